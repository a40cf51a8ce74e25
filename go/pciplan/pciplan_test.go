package pciplan

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const q35 = `<domain type='kvm'>
  <name>vm</name>
  <memory unit='MiB'>512</memory>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/var/lib/vm.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'>
      <mac address='52:54:00:00:00:01'/>
      <model type='virtio'/>
      <alias name='ua-net0'/>
    </interface>
  </devices>
</domain>
`

const slotOutOfRange = `<domain type='kvm'>
  <name>vm</name>
  <memory unit='MiB'>512</memory>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x20' function='0x0'/>
    </disk>
  </devices>
</domain>
`

const nic = `<interface type='user'>
  <mac address='52:54:00:00:00:02'/>
  <model type='virtio'/>
</interface>
`

// cli runs the pciplan program (PCIPLAN_CLI): exit status, standard output, standard error.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	bin := os.Getenv("PCIPLAN_CLI")
	if bin == "" {
		bin = "../../build/pciplan"
	}
	cmd := exec.Command(bin, args...)
	var out, errs strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	status := 0
	if exit, ok := err.(*exec.ExitError); ok {
		status = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", bin, err)
	}
	return status, out.String(), errs.String()
}

func write(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustPlan(t *testing.T, xml string, o *Options) *Result {
	t.Helper()
	res, err := Plan(xml, o)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return res
}

func TestPlanMatchesTheProgram(t *testing.T) {
	res := mustPlan(t, q35, nil)
	_, out, _ := cli(t, "plan", write(t, "vm.xml", q35))
	if res.XML != out || res.Text != out {
		t.Errorf("Plan's XML differs from the program's:\n%s\n---\n%s", res.XML, out)
	}
	if res.Family != "q35" {
		t.Errorf("family %q", res.Family)
	}
	addr := res.Addresses()["disk:vda"]
	if !strings.HasPrefix(addr, "<address type='pci'") || !strings.Contains(res.XML, addr) {
		t.Errorf("disk:vda at %q", addr)
	}
}

func TestJSONIsTheProgramsDocument(t *testing.T) {
	res := mustPlan(t, q35, nil)
	_, out, _ := cli(t, "plan", write(t, "vm.xml", q35), "--json")
	var doc, want map[string]interface{}
	if err := json.Unmarshal([]byte(res.JSON), &doc); err != nil {
		t.Fatalf("the result's JSON: %v", err)
	}
	if err := json.Unmarshal([]byte(out), &want); err != nil {
		t.Fatalf("the program's JSON: %v", err)
	}
	if doc["format"] != float64(1) || doc["kind"] != "plan" || doc["file"] != "" {
		t.Errorf("format, kind, file: %v %v %v", doc["format"], doc["kind"], doc["file"])
	}
	delete(doc, "file")
	delete(want, "file")
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("the result's JSON differs from the program's:\n%s\n---\n%s", res.JSON, out)
	}
}

func TestAddedListsTheControllersPciplanAdded(t *testing.T) {
	plain := mustPlan(t, q35, nil)
	roomy := mustPlan(t, q35, &Options{HotplugSlots: "pcie=4"})
	// libvirt keeps one free root port on q35: three more make four.
	if len(roomy.Added()) != len(plain.Added())+3 {
		t.Errorf("%d devices added with pcie=4, %d without", len(roomy.Added()), len(plain.Added()))
	}
	for _, d := range plain.Added() {
		if d.Element == "disk" || d.Element == "interface" {
			t.Errorf("%s listed as added", d.Name)
		}
	}
}

func TestInvalidDomainIsAnErrorWithItsRule(t *testing.T) {
	_, err := Plan(slotOutOfRange, nil)
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("want *Error, got %v", err)
	}
	d := perr.Diagnostics[0]
	if perr.Status != StatusInvalid || perr.Rule() != "slot-range" || d.Device != "disk 'vda'" ||
		d.Line != 6 || d.InDevice {
		t.Errorf("got %+v", perr)
	}
	path := write(t, "vm.xml", slotOutOfRange)
	status, _, stderr := cli(t, "plan", path)
	if status != 1 || strings.Split(stderr, "\n")[0] != strings.Replace(d.Text, "<input>", path, 1) {
		t.Errorf("the program said %q (status %d), the package %q", stderr, status, d.Text)
	}
}

func TestMalformedOptionsAreUsageErrors(t *testing.T) {
	for _, o := range []Options{
		{HotplugSlots: "pcie=many"},
		{Wishes: []string{"ua-net0:hotpluggable=maybe"}},
		{Policy: "fastest"},
		{PolicyJSON: `{"version": 1, "spare": 3}`},
		{Format: Format(9)},
	} {
		o := o
		_, err := Plan(q35, &o)
		var perr *Error
		if !errors.As(err, &perr) || perr.Status != StatusUsage {
			t.Errorf("%+v: want a usage error, got %v", o, err)
		}
	}
}

func TestWishesAndPolicyMatchTheProgram(t *testing.T) {
	path := write(t, "vm.xml", q35)
	policy := write(t, "policy.json", `{"version": 1, "pcieHotplugSlots": 3}`)
	cases := []struct {
		opts Options
		args []string
	}{
		{Options{Wishes: []string{"disk:vda:hotpluggable=no"}}, []string{"--wish", "disk:vda:hotpluggable=no"}},
		{Options{PolicyJSON: `{"version": 1, "pcieHotplugSlots": 3}`}, []string{"--policy-file", policy}},
		{Options{Policy: "integrated"}, []string{"--policy", "integrated"}},
		{Options{HotplugSlots: "pcie=2", WriteWishes: true}, []string{"--hotplug-slots", "pcie=2", "--write-wishes"}},
	}
	for _, c := range cases {
		c := c
		res := mustPlan(t, q35, &c.opts)
		_, out, _ := cli(t, append([]string{"plan", path}, c.args...)...)
		if res.XML != out {
			t.Errorf("%v: the package's XML differs from the program's", c.args)
		}
	}
	_, err := Plan(q35, &Options{Replan: []string{"disk:vdz"}})
	var perr *Error
	if !errors.As(err, &perr) || perr.Rule() != "bad-replan" {
		t.Errorf("replan of no device: %v", err)
	}
}

func TestCheckQemuArgsAndTreeMatchTheProgram(t *testing.T) {
	path := write(t, "vm.xml", q35)
	res, err := Check(q35, nil)
	if err != nil || res.Text != "ok (q35)\n" {
		t.Errorf("Check: %v %q", err, res.Text)
	}
	for _, c := range []struct {
		f    func(string, *Options) (string, error)
		o    Options
		args []string
	}{
		{QemuArgs, Options{}, []string{"qemu-args"}},
		{Tree, Options{}, []string{"tree"}},
		{Tree, Options{Format: FormatDot}, []string{"tree", "--dot"}},
	} {
		c := c
		got, err := c.f(q35, &c.o)
		_, want, _ := cli(t, append(c.args[:1:1], append([]string{path}, c.args[1:]...)...)...)
		if err != nil || got != want {
			t.Errorf("%v: %v\n%s\n---\n%s", c.args, err, got, want)
		}
	}
	// The JSON document: the program's, but for the file name (the library has none).
	args, _ := QemuArgs(q35, &Options{Format: FormatJSON})
	_, program, _ := cli(t, "qemu-args", path, "--json")
	var doc, want map[string]interface{}
	if err := json.Unmarshal([]byte(args), &doc); err != nil || len(doc["argv"].([]interface{})) == 0 {
		t.Errorf("qemu-args JSON: %v", err)
	}
	if err := json.Unmarshal([]byte(program), &want); err != nil {
		t.Fatalf("the program's qemu-args JSON: %v", err)
	}
	if doc["file"] != "" {
		t.Errorf("qemu-args JSON names a file: %v", doc["file"])
	}
	delete(doc, "file")
	delete(want, "file")
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("qemu-args JSON differs from the program's:\n%s\n---\n%s", args, program)
	}
}

func TestAttachAndDetachMatchTheProgram(t *testing.T) {
	planned := mustPlan(t, q35, nil).XML
	domain, device := write(t, "planned.xml", planned), write(t, "nic.xml", nic)
	attached, err := Attach(planned, nic, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, out, _ := cli(t, "attach", domain, device); attached.XML != out || !attached.HasFreeSlots {
		t.Errorf("Attach differs from the program")
	}
	live, err := Attach(planned, nic, &Options{Live: true})
	if err != nil || live.FreePCIe != 0 {
		t.Errorf("live attach: %v", err)
	}
	back, err := Detach(attached.XML, nic, nil)
	if err != nil || back.XML != planned {
		t.Errorf("Detach did not give the planned domain back: %v", err)
	}
	gone, err := DetachAlias(planned, "ua-net0", nil)
	if _, out, _ := cli(t, "detach", domain, "--alias", "ua-net0"); err != nil || gone.XML != out {
		t.Errorf("DetachAlias differs from the program: %v", err)
	}
	_, err = Attach(planned, "<interface type='user'>\n<mac", nil)
	var perr *Error
	if !errors.As(err, &perr) || !perr.Diagnostics[0].InDevice {
		t.Errorf("a broken device: %v", err)
	}
}

var ruleOfLine = regexp.MustCompile(`\[([a-z0-9-]+)\](?: \(hint: .*\))?$`)

func TestTheWholeCorpusPlansAsTheProgramDoes(t *testing.T) {
	dirs, err := filepath.Glob("../../tests/conformance/cases/*/input.xml")
	if err != nil || len(dirs) < 300 {
		t.Fatalf("the corpus: %d cases, %v", len(dirs), err)
	}
	sort.Strings(dirs)
	out := filepath.Join(t.TempDir(), "out.xml")
	for _, input := range dirs {
		os.Remove(out)
		text, err := os.ReadFile(input)
		if err != nil {
			t.Fatal(err)
		}
		status, _, stderr := cli(t, "plan", input, "-o", out)
		res, perr := Plan(string(text), nil)
		switch status {
		case 0:
			want, _ := os.ReadFile(out)
			if perr != nil || res.XML != string(want) {
				t.Errorf("%s: the package's XML differs from the program's (%v)", input, perr)
			}
		case 1:
			m := ruleOfLine.FindStringSubmatch(strings.Split(stderr, "\n")[0])
			var e *Error
			if !errors.As(perr, &e) || m == nil || e.Rule() != m[1] {
				t.Errorf("%s: the program said %q, the package %v", input, stderr, perr)
			}
		default:
			t.Errorf("%s: the program exited %d: %s", input, status, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(Version()) {
		t.Errorf("version %q", Version())
	}
}
