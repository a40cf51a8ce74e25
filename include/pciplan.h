/*
 * pciplan.h: the C interface of libpciplan, which plans PCI/PCIe device addresses for QEMU
 * virtual machines described in libvirt domain XML (the commands of the pciplan program:
 * plan, check, qemu-args, tree, attach, detach), for programs written in C or in any language
 * with a C foreign function interface. C99; link with `pkg-config --cflags --libs pciplan`.
 *
 * Conventions:
 * - Every text in and out is a NUL-terminated UTF-8 string. Domain and device XML is given
 *   as its text, never as a file name; the library reads and writes no files.
 * - Handles are opaque; each has a _new (or is made by a call) and a _free, and _free(NULL)
 *   does nothing.
 * - Every call returns a pciplan_status and, when `error` is not NULL, fills it: emptied on
 *   success, the diagnostics (every one, in order) on failure. A string a handle returns is
 *   owned by that handle and stays valid until the handle is freed (for an error object: until
 *   it is passed to the next call).
 * - The results are the command line's, byte for byte: pciplan_plan's XML is what
 *   `pciplan plan IN.xml` prints, and an error is what it reports on standard error.
 * - The library keeps no global state: calls on different handles may run on different
 *   threads at once; one handle is used by one thread at a time.
 * - Only the symbols declared here are exported, each starting with pciplan_; the soname
 *   (libpciplan.so.0) changes when one of them changes incompatibly.
 *
 * Example:
 *
 *   pciplan_error *err = pciplan_error_new();
 *   pciplan_options *opts = pciplan_options_new();
 *   pciplan_result *res = NULL;
 *   pciplan_options_set_hotplug_slots(opts, "pcie=4", err);
 *   if (pciplan_plan(domain_xml, opts, &res, err) == PCIPLAN_OK)
 *     fputs(pciplan_result_text(res), stdout);
 *   else
 *     fprintf(stderr, "%s\n", pciplan_error_render(err, 0, "vm.xml"));
 *   pciplan_result_free(res);
 *   pciplan_options_free(opts);
 *   pciplan_error_free(err);
 */
#ifndef PCIPLAN_H
#define PCIPLAN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PCIPLAN_BUILDING_LIBRARY) && defined(__GNUC__)
#define PCIPLAN_API __attribute__((visibility("default")))
#else
#define PCIPLAN_API
#endif

/* ---- Status and errors ---------------------------------------------------------------- */

/** What a call did; the values are the exit statuses of the pciplan program. */
typedef enum pciplan_status {
  PCIPLAN_OK = 0,       /* done; *result is set */
  PCIPLAN_INVALID = 1,  /* the domain (or device) is invalid or cannot be planned */
  PCIPLAN_USAGE = 2,    /* a bad argument: a NULL text or handle, a malformed option */
  PCIPLAN_INTERNAL = 3  /* a bug in pciplan, or out of memory; the message says which */
} pciplan_status;

/** Which input a diagnostic's line points into. */
typedef enum pciplan_input {
  PCIPLAN_INPUT_DOMAIN = 0, /* the domain XML */
  PCIPLAN_INPUT_DEVICE = 1  /* the device XML of pciplan_attach or pciplan_detach */
} pciplan_input;

/** The diagnostics of the last call it was passed to. */
typedef struct pciplan_error pciplan_error;

/** A new, empty error object, or NULL when out of memory. */
PCIPLAN_API pciplan_error *pciplan_error_new(void);
PCIPLAN_API void pciplan_error_free(pciplan_error *error);

/** The status of the last call `error` was passed to (PCIPLAN_OK when it succeeded). */
PCIPLAN_API pciplan_status pciplan_error_status(const pciplan_error *error);
/** How many diagnostics it has: 0 after a success, at least 1 after a failure. */
PCIPLAN_API size_t pciplan_error_count(const pciplan_error *error);

/*
 * The fields of diagnostic `i` (0 is the first, the one `pciplan plan` stops at). A string
 * field is NULL when out of range or unknown; `line` is 0 when unknown.
 */
/** The stable id of the rule broken: "double-use", "slot-range", "bad-wish"; NULL for a usage
 *  error or an internal one that breaks no rule of the domain. */
PCIPLAN_API const char *pciplan_error_rule(const pciplan_error *error, size_t i);
/** The device concerned, as pciplan names it: "disk 'vda'", "interface #0 (virtio)". */
PCIPLAN_API const char *pciplan_error_device(const pciplan_error *error, size_t i);
/** The PCI address concerned: "0000:00:05.0". */
PCIPLAN_API const char *pciplan_error_address(const pciplan_error *error, size_t i);
/** What is wrong, lower case, no final period. Never NULL for i < count. */
PCIPLAN_API const char *pciplan_error_message(const pciplan_error *error, size_t i);
/** What to do about it. */
PCIPLAN_API const char *pciplan_error_hint(const pciplan_error *error, size_t i);
/** The 1-based line in the input of pciplan_error_in, 0 when unknown. */
PCIPLAN_API int pciplan_error_line(const pciplan_error *error, size_t i);
PCIPLAN_API pciplan_input pciplan_error_in(const pciplan_error *error, size_t i);
/**
 * Diagnostic `i` as the pciplan program prints it, naming the input `file`:
 * "vm.xml:13: error: disk 'vda': PCI address slot='0x20' is out of range: must be <= 31
 * [slot-range]". A usage or internal error without a rule reads "pciplan: MESSAGE".
 */
PCIPLAN_API const char *pciplan_error_render(pciplan_error *error, size_t i, const char *file);

/* ---- Options: wishes, --replan and the output format ------------------------------------ */

/** The options of a call, as the pciplan program's flags; NULL options mean none. */
typedef struct pciplan_options pciplan_options;

PCIPLAN_API pciplan_options *pciplan_options_new(void);
PCIPLAN_API void pciplan_options_free(pciplan_options *options);

/*
 * The wishes (README "Wishes"). Each setter checks its text at once and fails with
 * PCIPLAN_USAGE and a diagnostic (rule "bad-wish") when it is malformed, leaving the options as
 * they were. A policy's wishes lie under the flags' wishes, whichever is set first; a later call
 * of the same setter replaces the earlier value (pciplan_options_add_wish adds one more).
 */
/** A policy file's JSON text (--policy-file): {"version": 1, "pcieHotplugSlots": 4, ...}. */
PCIPLAN_API pciplan_status pciplan_options_set_policy_json(pciplan_options *options,
                                                           const char *json,
                                                           pciplan_error *error);
/** --hotplug-slots: "pcie=4", "pcie=4,pci=2". */
PCIPLAN_API pciplan_status pciplan_options_set_hotplug_slots(pciplan_options *options,
                                                             const char *slots,
                                                             pciplan_error *error);
/** --policy: "libvirt" (the default) or "integrated". */
PCIPLAN_API pciplan_status pciplan_options_set_policy(pciplan_options *options,
                                                      const char *policy, pciplan_error *error);
/** --default-address-type: "pci" or "virtio-mmio". */
PCIPLAN_API pciplan_status pciplan_options_set_default_address_type(pciplan_options *options,
                                                                    const char *type,
                                                                    pciplan_error *error);
/** --wish: "DEVICE:NAME=VALUE[,NAME=VALUE]", e.g. "ua-net0:hotpluggable=yes". */
PCIPLAN_API pciplan_status pciplan_options_add_wish(pciplan_options *options, const char *wish,
                                                    pciplan_error *error);
/** --replan: drop this device's address and place it again ("disk:vdb", "ua-net0"). A device
 *  the domain does not have fails the call that plans it (rule "bad-replan"). */
PCIPLAN_API pciplan_status pciplan_options_add_replan(pciplan_options *options,
                                                      const char *device, pciplan_error *error);
/** --write-wishes (plan, attach, detach): record the wishes used into the output's metadata. */
PCIPLAN_API void pciplan_options_set_write_wishes(pciplan_options *options, int yes);

/** The text of pciplan_qemu_args and pciplan_tree. */
typedef enum pciplan_format {
  PCIPLAN_FORMAT_TEXT = 0, /* qemu-args: the shell command; tree: the text tree */
  PCIPLAN_FORMAT_JSON = 1, /* qemu-args --json */
  PCIPLAN_FORMAT_DOT = 2   /* tree --dot: a Graphviz graph */
} pciplan_format;
/** Sets the format, one of pciplan_format (an int, so that any value from any language is
 *  defined behaviour: another is PCIPLAN_USAGE). */
PCIPLAN_API pciplan_status pciplan_options_set_format(pciplan_options *options, int format,
                                                      pciplan_error *error);

/** attach --live: a free hot-pluggable slot only, no controller added (default: --config). */
PCIPLAN_API void pciplan_options_set_live(pciplan_options *options, int yes);
/** detach --prune: also remove the PCI controllers the device leaves empty on its path. */
PCIPLAN_API void pciplan_options_set_prune(pciplan_options *options, int yes);

/* ---- The commands ---------------------------------------------------------------------- */

/** What a command made. */
typedef struct pciplan_result pciplan_result;

/*
 * Each command reads the domain XML `domain`, applies `options` (NULL: none) and on success
 * sets *result to a new result (free it with pciplan_result_free); on failure *result is NULL
 * and `error` holds why.
 */
/** pciplan plan: every missing address filled in. Text: the planned domain XML. */
PCIPLAN_API pciplan_status pciplan_plan(const char *domain, const pciplan_options *options,
                                        pciplan_result **result, pciplan_error *error);
/** pciplan check: validate and plan, change nothing. Text: "ok (FAMILY)\n". */
PCIPLAN_API pciplan_status pciplan_check(const char *domain, const pciplan_options *options,
                                         pciplan_result **result, pciplan_error *error);
/** pciplan qemu-args: the QEMU command line of the plan. Text: the shell command, or with
 *  PCIPLAN_FORMAT_JSON the JSON of `qemu-args --json` (binary, machine, devices, argv). */
PCIPLAN_API pciplan_status pciplan_qemu_args(const char *domain, const pciplan_options *options,
                                             pciplan_result **result, pciplan_error *error);
/** pciplan tree: the planned topology. Text: the tree, or with PCIPLAN_FORMAT_DOT a Graphviz
 *  graph. */
PCIPLAN_API pciplan_status pciplan_tree(const char *domain, const pciplan_options *options,
                                        pciplan_result **result, pciplan_error *error);
/** pciplan attach: the domain with the one device element `device` added, no address moved.
 *  Text: the new domain XML. Errors in `device` are marked PCIPLAN_INPUT_DEVICE. */
PCIPLAN_API pciplan_status pciplan_attach(const char *domain, const char *device,
                                          const pciplan_options *options,
                                          pciplan_result **result, pciplan_error *error);
/** pciplan detach: the domain without the device the element `device` names (by disk target,
 *  MAC, host address, controller index, ...), no address moved. Text: the new domain XML. */
PCIPLAN_API pciplan_status pciplan_detach(const char *domain, const char *device,
                                          const pciplan_options *options,
                                          pciplan_result **result, pciplan_error *error);
/** pciplan detach --alias: the same, the device named by its alias. */
PCIPLAN_API pciplan_status pciplan_detach_alias(const char *domain, const char *alias,
                                                const pciplan_options *options,
                                                pciplan_result **result, pciplan_error *error);

PCIPLAN_API void pciplan_result_free(pciplan_result *result);

/** What the command prints on standard output (see each command). */
PCIPLAN_API const char *pciplan_result_text(const pciplan_result *result);
/** The planned domain XML, what `pciplan plan` would print for the domain the command planned
 *  (for attach and detach: the new domain); NULL when it cannot be written. */
PCIPLAN_API const char *pciplan_result_xml(const pciplan_result *result);
/** The result as the JSON document the command line's --json prints for a plan ("format": 1,
 *  "kind", "ok", "machine", "family", "devices" with identity and address, "added" with why,
 *  "explanations", "promises", "xml"; schema/plan.schema.json), with an empty "file". Made on
 *  first use and kept with the result; NULL only when memory runs out. */
PCIPLAN_API const char *pciplan_result_json(pciplan_result *result);
/** The machine family planned for: "pc", "q35" or "virt". */
PCIPLAN_API const char *pciplan_result_family(const pciplan_result *result);

/** The notes explaining the plan's choices (plan --explain), each one line. */
PCIPLAN_API size_t pciplan_result_note_count(const pciplan_result *result);
PCIPLAN_API const char *pciplan_result_note(const pciplan_result *result, size_t i);

/*
 * The planned devices: the domain's devices in document order, then those pciplan added
 * (controllers, the machine's default devices), each with its planned address.
 */
PCIPLAN_API size_t pciplan_result_device_count(const pciplan_result *result);
/** How pciplan names device `i` in messages: "disk 'vda'", "controller pci index 1
 *  (pcie-root-port)". */
PCIPLAN_API const char *pciplan_result_device_name(const pciplan_result *result, size_t i);
/** Its element name: "disk", "controller", "interface". */
PCIPLAN_API const char *pciplan_result_device_element(const pciplan_result *result, size_t i);
/** The name wishes and --replan give it: its user alias ("ua-net0"), else "disk:vdb",
 *  "interface:52:54:00:00:00:01", "hostdev:0000:01:00.0", "controller:pci:3"; NULL if none. */
PCIPLAN_API const char *pciplan_result_device_key(const pciplan_result *result, size_t i);
/** Its planned <address> element as written into the XML; NULL when it has none. */
PCIPLAN_API const char *pciplan_result_device_address(const pciplan_result *result, size_t i);
/** 1 when pciplan added the device, 0 when the domain has it. */
PCIPLAN_API int pciplan_result_device_added(const pciplan_result *result, size_t i);

/** attach and detach: the free hot-pluggable PCIe and PCI slots the new domain has left.
 *  Returns 0 and sets them (either pointer may be NULL), or -1 for other commands. */
PCIPLAN_API int pciplan_result_free_slots(const pciplan_result *result, unsigned *pcie,
                                          unsigned *pci);

/** The library's version: "0.1.0". */
PCIPLAN_API const char *pciplan_version(void);

#ifdef __cplusplus
}
#endif

#endif /* PCIPLAN_H */
