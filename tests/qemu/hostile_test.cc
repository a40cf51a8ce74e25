// Hostile paths and aliases in the QEMU command line: a comma in a path or alias must not add
// an option. Each command line qemu-args writes for such a domain starts in the real QEMU, and
// QEMU's device tree has exactly the ids and mount tags the XML means.
#include <gtest/gtest.h>

#include <filesystem>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/emit/qemu_args.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"
#include "pciplan/qmp/qemu_process.h"

namespace pciplan {
namespace {

namespace fs = std::filesystem;

struct Started {
  QemuCommand command;
  std::unique_ptr<QemuProcess> qemu;
};

Result<Started> StartPlanned(const std::string& xml) {
  Result<Domain> d = ReadDomain(xml);
  if (!d) return d.errors();
  Result<Plan> p = MakePlan(*d, BuiltinCatalog(), PolicyName::kLibvirt);
  if (!p) return p.errors();
  Result<QemuCommand> cmd = BuildQemuCommand(*d, *p, BuiltinCatalog());
  if (!cmd) return cmd.errors();
  QemuLaunch launch{cmd->binary, cmd->Argv()};
  for (const char* a : {"-S", "-display", "none", "-accel", "tcg"}) launch.args.push_back(a);
  Result<std::unique_ptr<QemuProcess>> q = QemuProcess::Start(launch);
  if (!q) return q.errors();
  return Started{std::move(cmd.value()), std::move(q.value())};
}

TEST(Hostile, CommasInPathsAndAliasesAddNoOptionAndQemuStartsAsTheXmlSays) {
  fs::path dir = fs::temp_directory_path() / ("pciplan-hostile-" + std::to_string(::getpid()));
  // Only the folders with the commas in their names exist: if a comma split the path, QEMU
  // would not find the folder and would not start.
  fs::create_directories(dir / "a,b");
  fs::create_directories(dir / "x,readonly=off,fmode=0777");
  std::string xml =
      "<domain type='qemu'><name>h</name><os><type arch='x86_64' machine='q35'>hvm</type></os>"
      "<devices>"
      "<filesystem type='mount'><source dir='" +
      (dir / "a,b").string() +
      "'/>"
      "<target dir='tag,x'/><alias name='ua-fs,fmode=0777'/></filesystem>"
      "<filesystem type='mount'><source dir='" +
      (dir / "x,readonly=off,fmode=0777").string() +
      "'/><target dir='t2'/><alias name='ua-ok_1'/></filesystem>"
      "<disk type='file' device='disk'><source file='/x'/><target dev='vda' bus='virtio'/>"
      "<alias name='ua-d,id=evil'/></disk>"
      "<serial type='pty'><target type='pci-serial'/><alias name='ua-c,mux=on'/></serial>"
      "<shmem name='s'><model type='ivshmem-plain'/><alias name='ua-s.x'/></shmem>"
      "<interface type='user'><mac address='52:54:00:00:00:01'/><model type='e1000e'/>"
      "<alias name='ua-n i'/></interface>"
      "</devices></domain>";
  Result<Started> s = StartPlanned(xml);
  ASSERT_TRUE(s.ok()) << s.errors().front().message;
  // libvirt drops every alias above but "ua-ok_1" (checked with libvirt 9.0), so those devices
  // get libvirt's generated ids; the 9p tag keeps its comma.
  std::vector<std::string> ids;
  for (const QemuDeviceArg& d : s->command.devices) ids.push_back(d.object.value("id", ""));
  for (const char* id : {"fs0", "ua-ok_1", "virtio-disk0", "serial0", "shmem0", "net0"}) {
    SCOPED_TRACE(id);
    EXPECT_NE(std::find(ids.begin(), ids.end(), id), ids.end());
    Result<nlohmann::json> type = s->qemu->qmp().Execute(
        "qom-get", {{"path", std::string("/machine/peripheral/") + id}, {"property", "type"}});
    EXPECT_TRUE(type.ok()) << type.errors().front().message;
  }
  Result<nlohmann::json> tag = s->qemu->qmp().Execute(
      "qom-get", {{"path", "/machine/peripheral/fs0/virtio-backend"}, {"property", "mount_tag"}});
  ASSERT_TRUE(tag.ok()) << tag.errors().front().message;
  EXPECT_EQ(*tag, "tag,x");
  fs::remove_all(dir);
}

TEST(Hostile, AMachineTypeWithACommaIsNoMachineType) {
  Result<Domain> d = ReadDomain(
      "<domain><os><type arch='x86_64' machine='pc-q35-7.2,usb=on'>hvm</type></os></domain>");
  ASSERT_TRUE(d.ok());
  Result<Plan> p = MakePlan(*d, BuiltinCatalog(), PolicyName::kLibvirt);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.errors().front().rule, Rule::kUnknownMachine);
}

TEST(Hostile, CommasInFsdevAndChardevValuesAreDoubledAsLibvirtDoes) {
  Result<Domain> d = ReadDomain(
      "<domain><os><type arch='x86_64' machine='q35'>hvm</type></os><devices>"
      "<filesystem><source dir='/srv/a,b'/><target dir='t'/></filesystem>"
      "<serial type='pty'><target type='pci-serial'/></serial></devices></domain>");
  ASSERT_TRUE(d.ok());
  Result<Plan> p = MakePlan(*d, BuiltinCatalog(), PolicyName::kLibvirt);
  ASSERT_TRUE(p.ok());
  Result<QemuCommand> cmd = BuildQemuCommand(*d, *p, BuiltinCatalog());
  ASSERT_TRUE(cmd.ok());
  std::vector<std::string> argv = cmd->Argv();
  EXPECT_NE(std::find(argv.begin(), argv.end(),
                      "local,id=pciplan-fs0,path=/srv/a,,b,security_model=none,readonly=on"),
            argv.end());
}

}  // namespace
}  // namespace pciplan
