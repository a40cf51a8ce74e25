// Package pciplan plans PCI/PCIe device addresses for QEMU virtual machines described in
// libvirt domain XML: every missing address filled in as libvirt 9.0 would (or as the wishes
// ask), no address that is already there moved. It is a thin cgo layer over libpciplan's C
// interface (pciplan.h), found through pkg-config; the results are those of the pciplan
// program, byte for byte.
//
//	res, err := pciplan.Plan(domainXML, &pciplan.Options{HotplugSlots: "pcie=4"})
//	if err != nil {
//		var perr *pciplan.Error
//		if errors.As(err, &perr) {
//			fmt.Println(perr.Diagnostics[0].Rule, perr.Diagnostics[0].Line)
//		}
//		return err
//	}
//	fmt.Print(res.XML)
package pciplan

/*
#cgo pkg-config: pciplan
#include <stdlib.h>
#include "pciplan.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// Status says why a call failed; the values are the pciplan program's exit statuses.
type Status int

const (
	StatusInvalid  Status = 1 // the domain (or device) is invalid or cannot be planned
	StatusUsage    Status = 2 // a malformed option (a wish, the spare slots, a policy)
	StatusInternal Status = 3 // a bug in pciplan, or out of memory
)

// Format is the text QemuArgs and Tree return.
type Format int

const (
	FormatText Format = 0 // qemu-args: the shell command; tree: the text tree
	FormatJSON Format = 1 // qemu-args --json
	FormatDot  Format = 2 // tree --dot
)

// Options are the pciplan program's flags (README "Wishes"); a nil *Options means none.
type Options struct {
	PolicyJSON         string   // a policy file's JSON (--policy-file), under the flags
	HotplugSlots       string   // --hotplug-slots: "pcie=4,pci=2"
	Policy             string   // --policy: "libvirt" or "integrated"
	DefaultAddressType string   // --default-address-type: "pci" or "virtio-mmio"
	Wishes             []string // --wish: "ua-net0:hotpluggable=yes"
	Replan             []string // --replan: "disk:vdb"
	WriteWishes        bool     // --write-wishes (Plan, Attach, Detach)
	Format             Format   // QemuArgs and Tree
	Live               bool     // Attach --live: a free hot-pluggable slot only
	Prune              bool     // Detach --prune: also the controllers left empty
}

// Diagnostic is one problem: the rule broken, the device and address concerned, where, why.
type Diagnostic struct {
	Rule     string // "slot-range", "double-use"; empty for a usage error
	Device   string // "disk 'vda'"
	Address  string // "0000:00:05.0"
	Line     int    // 1-based line in the input, 0 when unknown
	Message  string
	Hint     string
	InDevice bool   // the line is in the device XML of Attach or Detach
	Text     string // as the pciplan program prints it, the input named "<input>"
}

// Error is a failed call: every diagnostic, the first being the one `pciplan plan` stops at.
type Error struct {
	Status      Status
	Diagnostics []Diagnostic
}

func (e *Error) Error() string {
	texts := make([]string, len(e.Diagnostics))
	for i, d := range e.Diagnostics {
		texts[i] = d.Text
	}
	return strings.Join(texts, "; ")
}

// Rule is the first diagnostic's rule.
func (e *Error) Rule() string { return e.Diagnostics[0].Rule }

// Device is a planned device.
type Device struct {
	Name    string // how pciplan names it: "disk 'vda'", "controller pci index 1 (pcie-root-port)"
	Element string // "disk", "controller", ...
	Key     string // what wishes call it: "ua-net0", "disk:vda", "controller:pci:1"; may be empty
	Address string // its planned <address .../> element as written into the XML; empty if none
	Added   bool   // pciplan added it (a controller, a default device)
}

// Result is what a command made of a domain.
type Result struct {
	Text    string // what the command prints: the XML, "ok (q35)\n", ...
	XML     string // the planned domain XML
	Family  string // "pc", "q35" or "virt"
	JSON    string // the document `pciplan plan --json` prints, with an empty "file"
	Notes   []string
	Devices []Device // the domain's devices, then those pciplan added
	// Attach and Detach: the free hot-pluggable PCIe and PCI slots left.
	FreePCIe, FreePCI uint
	HasFreeSlots      bool
}

// Addresses maps each addressed device's key (its name when it has none) to its address.
func (r *Result) Addresses() map[string]string {
	out := map[string]string{}
	for _, d := range r.Devices {
		if d.Address == "" {
			continue
		}
		if d.Key != "" {
			out[d.Key] = d.Address
		} else {
			out[d.Name] = d.Address
		}
	}
	return out
}

// Added lists the devices pciplan added.
func (r *Result) Added() []Device {
	var out []Device
	for _, d := range r.Devices {
		if d.Added {
			out = append(out, d)
		}
	}
	return out
}

// Version is the version of the libpciplan linked: "0.1.0".
func Version() string { return C.GoString(C.pciplan_version()) }

func goString(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

func errorOf(status C.pciplan_status, e *C.pciplan_error) error {
	out := &Error{Status: Status(status)}
	name := C.CString("<input>")
	defer C.free(unsafe.Pointer(name))
	for i := C.size_t(0); i < C.pciplan_error_count(e); i++ {
		out.Diagnostics = append(out.Diagnostics, Diagnostic{
			Rule:     goString(C.pciplan_error_rule(e, i)),
			Device:   goString(C.pciplan_error_device(e, i)),
			Address:  goString(C.pciplan_error_address(e, i)),
			Line:     int(C.pciplan_error_line(e, i)),
			Message:  goString(C.pciplan_error_message(e, i)),
			Hint:     goString(C.pciplan_error_hint(e, i)),
			InDevice: C.pciplan_error_in(e, i) == C.PCIPLAN_INPUT_DEVICE,
			Text:     goString(C.pciplan_error_render(e, i, name)),
		})
	}
	if len(out.Diagnostics) == 0 {
		out.Diagnostics = []Diagnostic{{Message: fmt.Sprintf("status %d", status)}}
	}
	return out
}

// call runs one C call with a fresh error object, returning its error.
func call(f func(e *C.pciplan_error) C.pciplan_status) error {
	e := C.pciplan_error_new()
	if e == nil {
		return &Error{Status: StatusInternal, Diagnostics: []Diagnostic{{Message: "out of memory"}}}
	}
	defer C.pciplan_error_free(e)
	if status := f(e); status != C.PCIPLAN_OK {
		return errorOf(status, e)
	}
	return nil
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// newOptions makes the C options of o; the caller frees them.
func newOptions(o *Options) (*C.pciplan_options, error) {
	opts := C.pciplan_options_new()
	if o == nil {
		return opts, nil
	}
	type setter func(*C.pciplan_options, *C.char, *C.pciplan_error) C.pciplan_status
	set := func(f setter, text string) error {
		cs := C.CString(text)
		defer C.free(unsafe.Pointer(cs))
		return call(func(e *C.pciplan_error) C.pciplan_status { return f(opts, cs, e) })
	}
	var steps []func() error
	add := func(f setter, text string, given bool) {
		if given {
			steps = append(steps, func() error { return set(f, text) })
		}
	}
	add(func(p *C.pciplan_options, s *C.char, e *C.pciplan_error) C.pciplan_status {
		return C.pciplan_options_set_policy_json(p, s, e)
	}, o.PolicyJSON, o.PolicyJSON != "")
	add(func(p *C.pciplan_options, s *C.char, e *C.pciplan_error) C.pciplan_status {
		return C.pciplan_options_set_hotplug_slots(p, s, e)
	}, o.HotplugSlots, o.HotplugSlots != "")
	add(func(p *C.pciplan_options, s *C.char, e *C.pciplan_error) C.pciplan_status {
		return C.pciplan_options_set_policy(p, s, e)
	}, o.Policy, o.Policy != "")
	add(func(p *C.pciplan_options, s *C.char, e *C.pciplan_error) C.pciplan_status {
		return C.pciplan_options_set_default_address_type(p, s, e)
	}, o.DefaultAddressType, o.DefaultAddressType != "")
	for _, w := range o.Wishes {
		add(func(p *C.pciplan_options, s *C.char, e *C.pciplan_error) C.pciplan_status {
			return C.pciplan_options_add_wish(p, s, e)
		}, w, true)
	}
	for _, r := range o.Replan {
		add(func(p *C.pciplan_options, s *C.char, e *C.pciplan_error) C.pciplan_status {
			return C.pciplan_options_add_replan(p, s, e)
		}, r, true)
	}
	steps = append(steps, func() error {
		return call(func(e *C.pciplan_error) C.pciplan_status {
			return C.pciplan_options_set_format(opts, C.int(o.Format), e)
		})
	})
	for _, step := range steps {
		if err := step(); err != nil {
			C.pciplan_options_free(opts)
			return nil, err
		}
	}
	C.pciplan_options_set_write_wishes(opts, boolInt(o.WriteWishes))
	C.pciplan_options_set_live(opts, boolInt(o.Live))
	C.pciplan_options_set_prune(opts, boolInt(o.Prune))
	return opts, nil
}

func resultOf(r *C.pciplan_result) *Result {
	out := &Result{
		Text:   goString(C.pciplan_result_text(r)),
		XML:    goString(C.pciplan_result_xml(r)),
		Family: goString(C.pciplan_result_family(r)),
		JSON:   goString(C.pciplan_result_json(r)),
	}
	for i := C.size_t(0); i < C.pciplan_result_note_count(r); i++ {
		out.Notes = append(out.Notes, goString(C.pciplan_result_note(r, i)))
	}
	for i := C.size_t(0); i < C.pciplan_result_device_count(r); i++ {
		out.Devices = append(out.Devices, Device{
			Name:    goString(C.pciplan_result_device_name(r, i)),
			Element: goString(C.pciplan_result_device_element(r, i)),
			Key:     goString(C.pciplan_result_device_key(r, i)),
			Address: goString(C.pciplan_result_device_address(r, i)),
			Added:   C.pciplan_result_device_added(r, i) != 0,
		})
	}
	var pcie, pci C.unsigned
	if C.pciplan_result_free_slots(r, &pcie, &pci) == 0 {
		out.FreePCIe, out.FreePCI, out.HasFreeSlots = uint(pcie), uint(pci), true
	}
	return out
}

type command func(texts []*C.char, o *C.pciplan_options, r **C.pciplan_result,
	e *C.pciplan_error) C.pciplan_status

func run(f command, o *Options, texts ...string) (*Result, error) {
	for _, t := range texts {
		if strings.IndexByte(t, 0) >= 0 {
			return nil, &Error{Status: StatusUsage,
				Diagnostics: []Diagnostic{{Message: "the input contains a NUL byte"}}}
		}
	}
	opts, err := newOptions(o)
	if err != nil {
		return nil, err
	}
	defer C.pciplan_options_free(opts)
	cs := make([]*C.char, len(texts))
	for i, t := range texts {
		cs[i] = C.CString(t)
		defer C.free(unsafe.Pointer(cs[i]))
	}
	var res *C.pciplan_result
	if err := call(func(e *C.pciplan_error) C.pciplan_status { return f(cs, opts, &res, e) }); err != nil {
		return nil, err
	}
	defer C.pciplan_result_free(res)
	return resultOf(res), nil
}

// Plan fills in every missing address of the domain (pciplan plan); Result.XML is the domain.
func Plan(domainXML string, o *Options) (*Result, error) {
	return run(func(t []*C.char, p *C.pciplan_options, r **C.pciplan_result, e *C.pciplan_error) C.pciplan_status {
		return C.pciplan_plan(t[0], p, r, e)
	}, o, domainXML)
}

// Check validates and plans the domain (pciplan check); Result.Text is "ok (FAMILY)\n".
func Check(domainXML string, o *Options) (*Result, error) {
	return run(func(t []*C.char, p *C.pciplan_options, r **C.pciplan_result, e *C.pciplan_error) C.pciplan_status {
		return C.pciplan_check(t[0], p, r, e)
	}, o, domainXML)
}

// QemuArgs is the QEMU command line of the plan (pciplan qemu-args): the shell command, or
// with Options.Format FormatJSON the JSON of `qemu-args --json`.
func QemuArgs(domainXML string, o *Options) (string, error) {
	res, err := run(func(t []*C.char, p *C.pciplan_options, r **C.pciplan_result, e *C.pciplan_error) C.pciplan_status {
		return C.pciplan_qemu_args(t[0], p, r, e)
	}, o, domainXML)
	if err != nil {
		return "", err
	}
	return res.Text, nil
}

// Tree is the planned topology (pciplan tree): the text tree, or with Options.Format
// FormatDot a Graphviz graph.
func Tree(domainXML string, o *Options) (string, error) {
	res, err := run(func(t []*C.char, p *C.pciplan_options, r **C.pciplan_result, e *C.pciplan_error) C.pciplan_status {
		return C.pciplan_tree(t[0], p, r, e)
	}, o, domainXML)
	if err != nil {
		return "", err
	}
	return res.Text, nil
}

// Attach adds the device element deviceXML to the domain, moving no address (pciplan attach;
// Options.Live for a running guest). Diagnostics in the device XML have InDevice set.
func Attach(domainXML, deviceXML string, o *Options) (*Result, error) {
	return run(func(t []*C.char, p *C.pciplan_options, r **C.pciplan_result, e *C.pciplan_error) C.pciplan_status {
		return C.pciplan_attach(t[0], t[1], p, r, e)
	}, o, domainXML, deviceXML)
}

// Detach removes the device the element deviceXML names, moving no address (pciplan detach;
// Options.Prune also removes the controllers left empty).
func Detach(domainXML, deviceXML string, o *Options) (*Result, error) {
	return run(func(t []*C.char, p *C.pciplan_options, r **C.pciplan_result, e *C.pciplan_error) C.pciplan_status {
		return C.pciplan_detach(t[0], t[1], p, r, e)
	}, o, domainXML, deviceXML)
}

// DetachAlias removes the device with the alias name alias (pciplan detach --alias).
func DetachAlias(domainXML, alias string, o *Options) (*Result, error) {
	return run(func(t []*C.char, p *C.pciplan_options, r **C.pciplan_result, e *C.pciplan_error) C.pciplan_status {
		return C.pciplan_detach_alias(t[0], t[1], p, r, e)
	}, o, domainXML, alias)
}
