/* The smallest program on libpciplan, built against an installed copy (pkg-config or CMake's
 * find_package): plans the domain file argv[1] and prints the planned XML, as `pciplan plan`.
 *   smoke DOMAIN.xml */
#include <pciplan.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  static char text[1 << 22];
  size_t size;
  FILE *f;
  pciplan_error *err = pciplan_error_new();
  pciplan_result *res = NULL;
  int status;
  if (argc != 2 || !(f = fopen(argv[1], "rb"))) {
    fprintf(stderr, "usage: smoke DOMAIN.xml\n");
    return 2;
  }
  size = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[size] = '\0';
  status = pciplan_plan(text, NULL, &res, err);
  if (status == PCIPLAN_OK) {
    fputs(pciplan_result_text(res), stdout);
  } else {
    fprintf(stderr, "%s\n", pciplan_error_render(err, 0, argv[1]));
  }
  pciplan_result_free(res);
  pciplan_error_free(err);
  return status;
}
