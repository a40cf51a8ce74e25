/*
 * The C interface (include/pciplan.h) from a C99 program: each command, the error object, the
 * options, and the whole conformance corpus planned through the library against the bytes
 * the pciplan program writes.
 *   pciplan_capi_test TEST PCIPLAN_BINARY SOURCE_DIR
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pciplan.h"

static int failures = 0;
static const char *cli = NULL;
static const char *source_dir = NULL;

#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                        \
    }                                                                    \
  } while (0)

#define CHECK_STR(a, b) CHECK((a) != NULL && strcmp((a), (b)) == 0)
#define CHECK_HAS(text, part) CHECK((text) != NULL && strstr((text), (part)) != NULL)

/* A q35 domain: one virtio disk and one virtio interface, neither with an address. */
static const char *const kQ35 =
    "<domain type='kvm'>\n"
    "  <name>vm</name>\n"
    "  <memory unit='MiB'>512</memory>\n"
    "  <os><type arch='x86_64' machine='q35'>hvm</type></os>\n"
    "  <devices>\n"
    "    <disk type='file' device='disk'>\n"
    "      <source file='/var/lib/vm.img'/>\n"
    "      <target dev='vda' bus='virtio'/>\n"
    "    </disk>\n"
    "    <interface type='user'>\n"
    "      <mac address='52:54:00:00:00:01'/>\n"
    "      <model type='virtio'/>\n"
    "      <alias name='ua-net0'/>\n"
    "    </interface>\n"
    "  </devices>\n"
    "</domain>\n";

/* The disk on line 7, at slot 0x20 of pcie.0: out of range. */
static const char *const kSlotOutOfRange =
    "<domain type='kvm'>\n"
    "  <name>vm</name>\n"
    "  <memory unit='MiB'>512</memory>\n"
    "  <os><type arch='x86_64' machine='q35'>hvm</type></os>\n"
    "  <devices>\n"
    "    <disk type='file' device='disk'>\n"
    "      <target dev='vda' bus='virtio'/>\n"
    "      <address type='pci' domain='0x0000' bus='0x00' slot='0x20' function='0x0'/>\n"
    "    </disk>\n"
    "  </devices>\n"
    "</domain>\n";

static const char *const kNic =
    "<interface type='user'>\n"
    "  <mac address='52:54:00:00:00:02'/>\n"
    "  <model type='virtio'/>\n"
    "</interface>\n";
static const char *const kNic2 =
    "<interface type='user'><mac address='52:54:00:00:00:03'/><model type='virtio'/></interface>";

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  char *text;
  long size;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  size = ftell(f);
  fseek(f, 0, SEEK_SET);
  text = malloc((size_t)size + 1);
  if (text && fread(text, 1, (size_t)size, f) != (size_t)size) {
    free(text);
    text = NULL;
  }
  if (text) text[size] = '\0';
  fclose(f);
  return text;
}

/* Plans `domain` with `options`; the result, or NULL (and the check failed). */
static pciplan_result *plan_ok(const char *domain, const pciplan_options *options) {
  pciplan_result *r = NULL;
  pciplan_error *err = pciplan_error_new();
  pciplan_status s = pciplan_plan(domain, options, &r, err);
  if (s != PCIPLAN_OK) fprintf(stderr, "%s\n", pciplan_error_render(err, 0, "domain"));
  CHECK(s == PCIPLAN_OK);
  CHECK(pciplan_error_count(err) == 0);
  pciplan_error_free(err);
  return r;
}

/* How many devices of the result are controllers pciplan added. */
static size_t added_controllers(const pciplan_result *r) {
  size_t i, n = 0;
  for (i = 0; i < pciplan_result_device_count(r); ++i) {
    if (pciplan_result_device_added(r, i) &&
        strcmp(pciplan_result_device_element(r, i), "controller") == 0) {
      ++n;
    }
  }
  return n;
}

static void PlanFillsAddresses(void) {
  pciplan_result *r = plan_ok(kQ35, NULL);
  const char *xml = pciplan_result_xml(r);
  CHECK_HAS(xml, "<target dev='vda' bus='virtio'/>\n      <address type='pci'");
  CHECK_HAS(xml, "model='pcie-root-port'");
  CHECK(xml == NULL || strcmp(xml, pciplan_result_text(r)) == 0);
  CHECK_STR(pciplan_result_family(r), "q35");
  CHECK_HAS(pciplan_result_json(r), "\"format\": 1");
  CHECK_HAS(pciplan_result_json(r), "\"kind\": \"plan\"");
  CHECK_HAS(pciplan_result_json(r), "\"family\": \"q35\"");
  CHECK_HAS(pciplan_result_json(r), "\"promises\"");
  CHECK(pciplan_result_json(NULL) == NULL);
  pciplan_result_free(r);
}

static void CheckSaysTheFamily(void) {
  pciplan_result *r = NULL;
  CHECK(pciplan_check(kQ35, NULL, &r, NULL) == PCIPLAN_OK);
  CHECK_STR(pciplan_result_text(r), "ok (q35)\n");
  CHECK_HAS(pciplan_result_xml(r), "<address type='pci'");
  pciplan_result_free(r);
}

static void QemuArgsTextAndJson(void) {
  pciplan_result *r = NULL;
  pciplan_options *o = pciplan_options_new();
  CHECK(pciplan_qemu_args(kQ35, o, &r, NULL) == PCIPLAN_OK);
  CHECK(strncmp(pciplan_result_text(r), "qemu-system-x86_64", 18) == 0);
  CHECK_HAS(pciplan_result_text(r), "-device");
  pciplan_result_free(r);
  CHECK(pciplan_options_set_format(o, PCIPLAN_FORMAT_JSON, NULL) == PCIPLAN_OK);
  CHECK(pciplan_qemu_args(kQ35, o, &r, NULL) == PCIPLAN_OK);
  CHECK(pciplan_result_text(r)[0] == '{');
  CHECK_HAS(pciplan_result_text(r), "\"argv\"");
  pciplan_result_free(r);
  CHECK(pciplan_options_set_format(o, PCIPLAN_FORMAT_DOT, NULL) == PCIPLAN_OK);
  CHECK(pciplan_qemu_args(kQ35, o, &r, NULL) == PCIPLAN_USAGE);
  CHECK(r == NULL);
  pciplan_options_free(o);
}

static void TreeTextAndDot(void) {
  pciplan_result *r = NULL;
  pciplan_options *o = pciplan_options_new();
  CHECK(pciplan_tree(kQ35, o, &r, NULL) == PCIPLAN_OK);
  CHECK_HAS(pciplan_result_text(r), "pcie-root-port");
  CHECK_HAS(pciplan_result_text(r), "disk 'vda'");
  pciplan_result_free(r);
  CHECK(pciplan_options_set_format(o, PCIPLAN_FORMAT_DOT, NULL) == PCIPLAN_OK);
  CHECK(pciplan_tree(kQ35, o, &r, NULL) == PCIPLAN_OK);
  CHECK(strncmp(pciplan_result_text(r), "digraph", 7) == 0);
  pciplan_result_free(r);
  pciplan_options_free(o);
}

static void AttachAndDetach(void) {
  pciplan_result *planned = plan_ok(kQ35, NULL);
  pciplan_result *attached = NULL, *detached = NULL, *by_alias = NULL, *live = NULL;
  pciplan_result *again = NULL;
  pciplan_options *o = pciplan_options_new();
  pciplan_error *err = pciplan_error_new();
  unsigned pcie = 99, pci = 99;
  CHECK(pciplan_result_free_slots(planned, &pcie, &pci) == -1);
  CHECK(pciplan_attach(pciplan_result_xml(planned), kNic, NULL, &attached, err) == PCIPLAN_OK);
  CHECK_HAS(pciplan_result_xml(attached), "52:54:00:00:00:02");
  CHECK(pciplan_result_free_slots(attached, &pcie, &pci) == 0);
  /* The new device is detached by its element, the old one by its alias. */
  CHECK(pciplan_detach(pciplan_result_xml(attached), kNic, NULL, &detached, err) == PCIPLAN_OK);
  CHECK_STR(pciplan_result_xml(detached), pciplan_result_xml(planned));
  CHECK(pciplan_detach_alias(pciplan_result_xml(planned), "ua-net0", NULL, &by_alias, err) ==
        PCIPLAN_OK);
  CHECK(strstr(pciplan_result_xml(by_alias), "52:54:00:00:00:01") == NULL);
  /* A live attach takes the one spare root port libvirt keeps on q35; then none is left, and
   * a running guest cannot get a new one. */
  pciplan_options_set_live(o, 1);
  CHECK(pciplan_attach(pciplan_result_xml(planned), kNic, o, &live, err) == PCIPLAN_OK);
  CHECK(pciplan_result_free_slots(live, &pcie, &pci) == 0);
  CHECK(pcie == 0 && pci == 0);
  CHECK(pciplan_attach(pciplan_result_xml(live), kNic2, o, &again, err) == PCIPLAN_INVALID);
  CHECK(again == NULL);
  CHECK_STR(pciplan_error_rule(err, 0), "no-free-slot");
  CHECK_STR(pciplan_error_device(err, 0), "interface #2 (virtio)");
  CHECK(pciplan_error_hint(err, 0) != NULL);
  pciplan_result_free(live);
  pciplan_result_free(planned);
  pciplan_result_free(attached);
  pciplan_result_free(detached);
  pciplan_result_free(by_alias);
  pciplan_options_free(o);
  pciplan_error_free(err);
}

static void InvalidDomainFillsTheError(void) {
  pciplan_result *r = (pciplan_result *)&r; /* set to NULL by the call */
  pciplan_error *err = pciplan_error_new();
  CHECK(pciplan_plan(kSlotOutOfRange, NULL, &r, err) == PCIPLAN_INVALID);
  CHECK(r == NULL);
  CHECK(pciplan_error_status(err) == PCIPLAN_INVALID);
  CHECK(pciplan_error_count(err) >= 1);
  CHECK_STR(pciplan_error_rule(err, 0), "slot-range");
  CHECK_STR(pciplan_error_device(err, 0), "disk 'vda'");
  CHECK(pciplan_error_line(err, 0) == 6);
  CHECK(pciplan_error_in(err, 0) == PCIPLAN_INPUT_DOMAIN);
  CHECK(pciplan_error_message(err, 0) != NULL && pciplan_error_message(err, 0)[0] != '\0');
  CHECK(strncmp(pciplan_error_render(err, 0, "vm.xml"), "vm.xml:6: error: disk 'vda'", 27) == 0);
  CHECK_HAS(pciplan_error_render(err, 0, "vm.xml"), "[slot-range]");
  CHECK(pciplan_error_rule(err, pciplan_error_count(err)) == NULL);
  /* The next success empties it. */
  CHECK(pciplan_plan(kQ35, NULL, &r, err) == PCIPLAN_OK);
  CHECK(pciplan_error_count(err) == 0);
  CHECK(pciplan_error_status(err) == PCIPLAN_OK);
  pciplan_result_free(r);
  pciplan_error_free(err);
}

/* A device element that is not XML: the error points into the device, not the domain. */
static void DeviceErrorsPointIntoTheDevice(void) {
  pciplan_result *planned = plan_ok(kQ35, NULL), *r = NULL;
  pciplan_error *err = pciplan_error_new();
  size_t i;
  CHECK(pciplan_attach(pciplan_result_xml(planned), "<interface type='user'>\n<mac", NULL, &r,
                       err) == PCIPLAN_INVALID);
  CHECK(pciplan_error_count(err) >= 1);
  CHECK(pciplan_error_in(err, 0) == PCIPLAN_INPUT_DEVICE);
  CHECK_STR(pciplan_error_rule(err, 0), "xml-malformed");
  for (i = 0; i < pciplan_error_count(err); ++i) CHECK(pciplan_error_message(err, i) != NULL);
  pciplan_result_free(planned);
  pciplan_error_free(err);
}

static void UsageErrorsLeaveOptions(void) {
  pciplan_options *o = pciplan_options_new();
  pciplan_error *err = pciplan_error_new();
  pciplan_result *plain = plan_ok(kQ35, NULL), *r = NULL;
  CHECK(pciplan_options_set_hotplug_slots(o, "pcie=many", err) == PCIPLAN_USAGE);
  CHECK_STR(pciplan_error_rule(err, 0), "bad-wish");
  CHECK(pciplan_options_add_wish(o, "ua-net0:hotpluggable=maybe", err) == PCIPLAN_USAGE);
  CHECK(pciplan_options_set_policy(o, "fastest", err) == PCIPLAN_USAGE);
  CHECK(pciplan_options_set_policy_json(o, "{\"version\": 1, \"spare\": 3}", err) ==
        PCIPLAN_USAGE);
  CHECK(pciplan_options_set_format(o, 7, err) == PCIPLAN_USAGE);
  CHECK(pciplan_error_rule(err, 0) == NULL);
  CHECK_HAS(pciplan_error_render(err, 0, "vm.xml"), "pciplan: ");
  /* None of them changed the options: the plan is the plain one. */
  r = plan_ok(kQ35, o);
  CHECK_STR(pciplan_result_xml(r), pciplan_result_xml(plain));
  pciplan_result_free(r);
  pciplan_result_free(plain);
  pciplan_options_free(o);
  pciplan_error_free(err);
}

static void WishesAndReplan(void) {
  pciplan_options *o = pciplan_options_new();
  pciplan_error *err = pciplan_error_new();
  pciplan_result *plain = plan_ok(kQ35, NULL), *spare = NULL, *r = NULL;
  CHECK(pciplan_options_set_hotplug_slots(o, "pcie=4", err) == PCIPLAN_OK);
  spare = plan_ok(kQ35, o);
  /* libvirt keeps one free root port on q35: three more make four. */
  CHECK(added_controllers(spare) == added_controllers(plain) + 3);
  CHECK(pciplan_options_add_wish(o, "disk:vda:hotpluggable=no", err) == PCIPLAN_OK);
  CHECK(pciplan_options_add_replan(o, "disk:vdz", err) == PCIPLAN_OK);
  CHECK(pciplan_plan(kQ35, o, &r, err) == PCIPLAN_INVALID);
  CHECK_STR(pciplan_error_rule(err, 0), "bad-replan");
  pciplan_result_free(plain);
  pciplan_result_free(spare);
  pciplan_options_free(o);
  pciplan_error_free(err);
}

static void NullArgumentsAreUsageErrors(void) {
  pciplan_result *r = NULL;
  pciplan_error *err = pciplan_error_new();
  CHECK(pciplan_plan(NULL, NULL, &r, err) == PCIPLAN_USAGE);
  CHECK(pciplan_error_count(err) == 1);
  CHECK(pciplan_error_rule(err, 0) == NULL);
  CHECK(pciplan_plan(kQ35, NULL, NULL, err) == PCIPLAN_USAGE);
  CHECK(pciplan_attach(kQ35, NULL, NULL, &r, err) == PCIPLAN_USAGE);
  CHECK(pciplan_detach_alias(kQ35, "", NULL, &r, err) == PCIPLAN_USAGE);
  CHECK(pciplan_options_add_wish(NULL, "x:bus=pci", err) == PCIPLAN_USAGE);
  CHECK(pciplan_plan(NULL, NULL, &r, NULL) == PCIPLAN_USAGE); /* no error object: fine */
  CHECK(r == NULL);
  CHECK(pciplan_result_text(NULL) == NULL);
  CHECK(pciplan_error_count(NULL) == 0);
  pciplan_result_free(NULL);
  pciplan_options_free(NULL);
  pciplan_error_free(NULL);
  pciplan_error_free(err);
}

static void DevicesAndAddedControllers(void) {
  pciplan_result *r = plan_ok(kQ35, NULL);
  size_t i, n = pciplan_result_device_count(r), disks = 0, added = 0;
  for (i = 0; i < n; ++i) {
    const char *address = pciplan_result_device_address(r, i);
    if (strcmp(pciplan_result_device_element(r, i), "disk") == 0) {
      ++disks;
      CHECK(i == 0);
      CHECK_STR(pciplan_result_device_name(r, i), "disk 'vda'");
      CHECK_STR(pciplan_result_device_key(r, i), "disk:vda");
      CHECK(!pciplan_result_device_added(r, i));
    }
    if (strcmp(pciplan_result_device_element(r, i), "interface") == 0) {
      CHECK_STR(pciplan_result_device_key(r, i), "ua-net0");
    }
    if (pciplan_result_device_added(r, i)) ++added;
    /* Every address the result lists is written into the XML. */
    if (address) CHECK_HAS(pciplan_result_xml(r), address);
  }
  CHECK(disks == 1);
  CHECK(added >= 3); /* pcie-root and the root ports of the disk and the interface */
  CHECK(added_controllers(r) >= 3);
  CHECK(pciplan_result_device_name(r, n) == NULL);
  pciplan_result_free(r);
}

/* The rule id of the first line `pciplan` printed: "... [rule]" or "... [rule] (hint: ...)". */
static int first_rule(const char *err, char *rule, size_t size) {
  const char *end = strchr(err, '\n'), *hint = strstr(err, "] (hint: "), *close, *open;
  if (!end) end = err + strlen(err);
  close = hint && hint < end ? hint : end - 1;
  if (close < err || *close != ']') return 0;
  for (open = close; open > err && *open != '['; --open) {
  }
  if (*open != '[' || (size_t)(close - open) > size) return 0;
  memcpy(rule, open + 1, (size_t)(close - open - 1));
  rule[close - open - 1] = '\0';
  return 1;
}

static int compare_case(const char dir[2048], const char *tmp) {
  char input[4096], out[4096], err_path[4096], command[16384], rule[128];
  /* `dir` is at most 2047 bytes long (CorpusMatchesCli). */
  char *domain, *expected, *errors;
  pciplan_result *r = NULL;
  pciplan_error *err = pciplan_error_new();
  int status, ok = 1;
  snprintf(input, sizeof input, "%s/input.xml", dir);
  snprintf(out, sizeof out, "%s/out.xml", tmp);
  snprintf(err_path, sizeof err_path, "%s/err", tmp);
  unlink(out);
  snprintf(command, sizeof command, "'%s' plan '%s' -o '%s' 2>'%s'", cli, input, out, err_path);
  status = system(command);
  status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  domain = slurp(input);
  if (!domain || (status != 0 && status != 1)) {
    fprintf(stderr, "%s: cannot run the pciplan program (status %d)\n", dir, status);
    ok = 0;
  } else if (status == 0) {
    expected = slurp(out);
    if (pciplan_plan(domain, NULL, &r, err) != PCIPLAN_OK) {
      fprintf(stderr, "%s: the library failed: %s\n", dir, pciplan_error_render(err, 0, input));
      ok = 0;
    } else if (!expected || strcmp(expected, pciplan_result_text(r)) != 0) {
      fprintf(stderr, "%s: the library's XML differs from the program's\n", dir);
      ok = 0;
    }
    free(expected);
  } else {
    errors = slurp(err_path);
    if (pciplan_plan(domain, NULL, &r, err) != PCIPLAN_INVALID) {
      fprintf(stderr, "%s: the program failed, the library did not\n", dir);
      ok = 0;
    } else if (!errors || !first_rule(errors, rule, sizeof rule) ||
               strcmp(rule, pciplan_error_rule(err, 0)) != 0 ||
               strncmp(errors, pciplan_error_render(err, 0, input), strcspn(errors, "\n")) != 0) {
      fprintf(stderr, "%s: the program said %s, the library %s\n", dir, errors ? errors : "?",
              pciplan_error_render(err, 0, input));
      ok = 0;
    }
    free(errors);
  }
  free(domain);
  pciplan_result_free(r);
  pciplan_error_free(err);
  return ok;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void CorpusMatchesCli(void) {
  char cases[1024], dir[2048], tmp[] = "/tmp/pciplan-capi-XXXXXX";
  char *names[4096];
  size_t n = 0, i, passed = 0;
  struct dirent *e;
  DIR *d;
  snprintf(cases, sizeof cases, "%s/tests/conformance/cases", source_dir);
  d = opendir(cases);
  CHECK(d != NULL);
  if (!d || !mkdtemp(tmp)) return;
  while ((e = readdir(d)) != NULL && n < 4096) {
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9') {
      names[n] = malloc(strlen(e->d_name) + 1);
      strcpy(names[n++], e->d_name);
    }
  }
  closedir(d);
  qsort(names, n, sizeof names[0], by_name);
  for (i = 0; i < n; ++i) {
    snprintf(dir, sizeof dir, "%s/%s", cases, names[i]);
    if (compare_case(dir, tmp)) ++passed;
    free(names[i]);
  }
  snprintf(dir, sizeof dir, "%s/out.xml", tmp);
  unlink(dir);
  snprintf(dir, sizeof dir, "%s/err", tmp);
  unlink(dir);
  rmdir(tmp);
  printf("corpus: %zu of %zu cases give the program's bytes and first rule\n", passed, n);
  CHECK(n > 300);
  CHECK(passed == n);
}

struct test {
  const char *name;
  void (*run)(void);
};

int main(int argc, char **argv) {
  static const struct test tests[] = {
      {"PlanFillsAddresses", PlanFillsAddresses},
      {"CheckSaysTheFamily", CheckSaysTheFamily},
      {"QemuArgsTextAndJson", QemuArgsTextAndJson},
      {"TreeTextAndDot", TreeTextAndDot},
      {"AttachAndDetach", AttachAndDetach},
      {"InvalidDomainFillsTheError", InvalidDomainFillsTheError},
      {"DeviceErrorsPointIntoTheDevice", DeviceErrorsPointIntoTheDevice},
      {"UsageErrorsLeaveOptions", UsageErrorsLeaveOptions},
      {"WishesAndReplan", WishesAndReplan},
      {"NullArgumentsAreUsageErrors", NullArgumentsAreUsageErrors},
      {"DevicesAndAddedControllers", DevicesAndAddedControllers},
      {"CorpusMatchesCli", CorpusMatchesCli},
  };
  size_t i;
  if (argc != 4) {
    fprintf(stderr, "usage: pciplan_capi_test TEST PCIPLAN_BINARY SOURCE_DIR\n");
    return 2;
  }
  cli = argv[2];
  source_dir = argv[3];
  for (i = 0; i < sizeof tests / sizeof tests[0]; ++i) {
    if (strcmp(tests[i].name, argv[1]) == 0) {
      tests[i].run();
      printf("%s: %s\n", tests[i].name, failures ? "FAILED" : "passed");
      return failures ? 1 : 0;
    }
  }
  fprintf(stderr, "no test named %s\n", argv[1]);
  return 2;
}
