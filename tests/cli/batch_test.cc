// Batch mode (plan, check and qemu-args --batch): over the whole conformance corpus with two
// worker threads, every file's output and outcome must be what a single run of the same command
// on that file gives, byte for byte; the outcome lines come in input order, as text or JSON lines;
// a name clash or a missing -O is refused before anything is written.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "test_support.h"

namespace {

namespace fs = std::filesystem;

using pciplan::testing::RunPciplan;
using pciplan::testing::RunResult;
using pciplan::testing::Slurp;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string JoinErrors(const std::string& err) {
  std::string out;
  for (const std::string& line : Lines(err)) out += (out.empty() ? "" : "; ") + line;
  return out;
}

/// A single run's outcome as a batch reports it: "ok FILE -> OUT" / "ok FILE (FAMILY)" (check),
/// or "error " and its error lines joined by "; ".
std::string ExpectedLine(const RunResult& single, const std::string& file,
                         const std::string& output) {
  if (single.status != 0) return "error " + JoinErrors(single.err);
  if (!output.empty()) return "ok " + file + " -> " + output;
  // check prints "FILE: ok (FAMILY)".
  std::string family = single.out.substr(single.out.find(": ok (") + 5);
  return "ok " + file + " " + family.substr(0, family.size() - 1);
}

/// A fresh folder holding every conformance case's input as in/CASE.xml (the cases' own files
/// all have one name, input.xml); removed at the end.
class BatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pciplan-batch-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "in");
    for (const auto& e : fs::directory_iterator(PCIPLAN_CONFORMANCE_DIR)) {
      if (!fs::exists(e.path() / "input.xml")) continue;
      std::string name = e.path().filename().string();
      fs::copy_file(e.path() / "input.xml", dir_ / "in" / (name + ".xml"));
      names_.push_back(name);
    }
    std::sort(names_.begin(), names_.end());
  }
  void TearDown() override { fs::remove_all(dir_); }

  RunResult Run(const std::vector<std::string>& args, const fs::path& stdin_file = {}) {
    return RunPciplan(dir_, args, stdin_file);
  }
  std::vector<std::string> Files(const std::string& folder) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_ / folder)) {
      out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path dir_;
  std::vector<std::string> names_;  // the cases, sorted: the order of a folder's files
};

TEST_F(BatchTest, PlanOverTheCorpusWritesWhatSingleRunsPrint) {
  ASSERT_GE(names_.size(), 300u);
  RunResult batch = Run({"plan", "--batch", "-O", "out", "-j", "2", "in"});
  EXPECT_EQ(batch.status, 1) << "some cases are invalid";
  EXPECT_EQ(batch.err, "");
  std::vector<std::string> lines = Lines(batch.out);
  ASSERT_EQ(lines.size(), names_.size());
  std::set<std::string> written;
  int ok = 0, failed = 0;
  for (size_t i = 0; i < names_.size(); ++i) {
    SCOPED_TRACE(names_[i]);
    std::string file = "in/" + names_[i] + ".xml", out = "out/" + names_[i] + ".xml";
    RunResult single = Run({"plan", file});
    ASSERT_TRUE(single.status == 0 || single.status == 1) << single.err;
    EXPECT_EQ(lines[i], ExpectedLine(single, file, out));
    if (single.status == 0) {
      EXPECT_EQ(Slurp(dir_ / out), single.out);
      written.insert(names_[i] + ".xml");
      ++ok;
    } else {
      EXPECT_FALSE(fs::exists(dir_ / out));
      ++failed;
    }
  }
  EXPECT_GT(ok, 200);
  EXPECT_GT(failed, 10);
  // Only the outputs: no temporary file is left.
  std::vector<std::string> files = Files("out");
  EXPECT_EQ(std::set<std::string>(files.begin(), files.end()), written);
}

// A batch flushes its output folder once at its end, not each file: a crash (a kill) of pciplan
// at any point of a file's write still leaves every output old or new and whole, and the next
// batch removes the temporary a kill between link and rename leaves.
TEST_F(BatchTest, ACrashMidBatchLeavesEachOutputOldOrNewWhole) {
  RunResult fresh = Run({"plan", "--batch", "-O", "new", "-j", "2", "in"});
  ASSERT_EQ(fresh.status, 1) << "some cases are invalid";
  std::vector<std::string> outputs = Files("new");
  ASSERT_GT(outputs.size(), 200u);
  for (const char* point : {"mid-write", "before-rename", "after-rename"}) {
    SCOPED_TRACE(point);
    fs::remove_all(dir_ / "out");
    fs::create_directories(dir_ / "out");
    for (const std::string& f : outputs) std::ofstream(dir_ / "out" / f) << "old";
    ::setenv("PCIPLAN_CRASH_POINT", point, 1);
    RunResult killed = Run({"plan", "--batch", "-O", "out", "-j", "2", "in"});
    ::unsetenv("PCIPLAN_CRASH_POINT");
    EXPECT_EQ(killed.status, 128 + SIGKILL);
    int renewed = 0;
    for (const std::string& f : outputs) {
      std::string text = Slurp(dir_ / "out" / f);
      if (text == "old") continue;
      EXPECT_EQ(text, Slurp(dir_ / "new" / f)) << f;
      ++renewed;
    }
    EXPECT_EQ(renewed > 0, std::string(point) == "after-rename");
    RunResult again = Run({"plan", "--batch", "-O", "out", "-j", "2", "in"});
    EXPECT_EQ(again.status, 1);
    EXPECT_EQ(Files("out"), outputs) << "every output, and no temporary";
    for (const std::string& f : outputs) {
      EXPECT_EQ(Slurp(dir_ / "out" / f), Slurp(dir_ / "new" / f)) << f;
    }
  }
}

TEST_F(BatchTest, CheckOverTheCorpusReportsWhatSingleRunsPrint) {
  RunResult batch = Run({"check", "--batch", "-j", "2", "in"});
  EXPECT_EQ(batch.status, 1);
  std::vector<std::string> lines = Lines(batch.out);
  ASSERT_EQ(lines.size(), names_.size());
  for (size_t i = 0; i < names_.size(); ++i) {
    SCOPED_TRACE(names_[i]);
    std::string file = "in/" + names_[i] + ".xml";
    EXPECT_EQ(lines[i], ExpectedLine(Run({"check", file}), file, ""));
  }
}

TEST_F(BatchTest, QemuArgsOverTheCorpusWritesWhatSingleRunsPrint) {
  RunResult batch = Run({"qemu-args", "--batch", "-O", "args", "-j", "2", "in"});
  EXPECT_EQ(batch.status, 1);
  std::vector<std::string> lines = Lines(batch.out);
  ASSERT_EQ(lines.size(), names_.size());
  for (size_t i = 0; i < names_.size(); ++i) {
    SCOPED_TRACE(names_[i]);
    std::string file = "in/" + names_[i] + ".xml", out = "args/" + names_[i] + ".args";
    RunResult single = Run({"qemu-args", file});
    EXPECT_EQ(lines[i], ExpectedLine(single, file, out));
    if (single.status == 0) {
      EXPECT_EQ(Slurp(dir_ / out), single.out);
    } else {
      EXPECT_FALSE(fs::exists(dir_ / out));
    }
  }
  // --json: NAME.json files, as qemu-args --json prints them, and JSON lines.
  // Three that have a command line: the first two and one from the middle of the corpus.
  std::vector<std::string> some;
  for (size_t i : {size_t{0}, names_.size() / 2}) {
    for (size_t n = 0; some.size() < (i == 0 ? 2u : 3u) && i + n < names_.size(); ++n) {
      if (Run({"qemu-args", "in/" + names_[i + n] + ".xml"}).status == 0) {
        some.push_back(names_[i + n]);
      }
    }
  }
  ASSERT_EQ(some.size(), 3u);
  std::vector<std::string> args = {"qemu-args", "--batch", "--json", "-O", "json"};
  for (const std::string& n : some) args.push_back("in/" + n + ".xml");
  RunResult json = Run(args);
  lines = Lines(json.out);
  ASSERT_EQ(lines.size(), some.size());
  for (size_t i = 0; i < some.size(); ++i) {
    SCOPED_TRACE(some[i]);
    RunResult single = Run({"qemu-args", "--json", "in/" + some[i] + ".xml"});
    ASSERT_EQ(single.status, 0) << single.err;
    nlohmann::json line = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(line["ok"], true);
    EXPECT_EQ(line["output"], "json/" + some[i] + ".json");
    EXPECT_EQ(Slurp(dir_ / "json" / (some[i] + ".json")), single.out);
  }
}

/// A diagnostic of a JSON line rendered as a single run prints it.
std::string Render(const std::string& file, const nlohmann::json& e) {
  std::string out = file;
  if (!e["line"].is_null()) out += ":" + std::to_string(e["line"].get<int>());
  out += ": error: ";
  if (!e["device"].is_null()) {
    out += e["device"].get<std::string>();
    if (!e["address"].is_null()) out += " at " + e["address"].get<std::string>();
    out += ": ";
  } else if (!e["address"].is_null()) {
    out += e["address"].get<std::string>() + ": ";
  }
  out += e["message"].get<std::string>() + " [" + e["rule"].get<std::string>() + "]";
  if (!e["hint"].is_null()) out += " (hint: " + e["hint"].get<std::string>() + ")";
  return out;
}

TEST_F(BatchTest, JsonLinesCarryTheSameOutcomesAsTextLines) {
  RunResult text = Run({"plan", "--batch", "-O", "text", "in"});
  RunResult json = Run({"plan", "--batch", "--json", "-O", "json", "-j", "2", "in"});
  EXPECT_EQ(json.status, text.status);
  std::vector<std::string> text_lines = Lines(text.out), json_lines = Lines(json.out);
  ASSERT_EQ(json_lines.size(), names_.size());
  ASSERT_EQ(text_lines.size(), names_.size());
  int with_errors = 0;
  for (size_t i = 0; i < names_.size(); ++i) {
    SCOPED_TRACE(names_[i]);
    std::string file = "in/" + names_[i] + ".xml";
    nlohmann::json j = nlohmann::json::parse(json_lines[i]);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["format"], 1) << json_lines[i];
    EXPECT_EQ(j["kind"], "plan");
    EXPECT_EQ(j["file"], file);
    EXPECT_TRUE(j["xml"].is_null());  // the XML is in the output file, not the line
    if (j["ok"].get<bool>()) {
      EXPECT_EQ(j["output"], "json/" + names_[i] + ".xml");
      EXPECT_TRUE(j["diagnostics"].empty());
      EXPECT_FALSE(j["devices"].empty());
      EXPECT_EQ(text_lines[i], "ok " + file + " -> text/" + names_[i] + ".xml");
      EXPECT_EQ(Slurp(dir_ / "json" / (names_[i] + ".xml")),
                Slurp(dir_ / "text" / (names_[i] + ".xml")));
      continue;
    }
    EXPECT_TRUE(j["output"].is_null());
    EXPECT_TRUE(j["devices"].empty());
    ASSERT_FALSE(j["diagnostics"].empty());
    std::string rendered;
    for (const nlohmann::json& e : j["diagnostics"]) {
      ASSERT_EQ(e.size(), 9u) << e;
      EXPECT_EQ(e["text"], Render(file, e));
      rendered += (rendered.empty() ? "" : "; ") + Render(file, e);
    }
    EXPECT_EQ(text_lines[i], "error " + rendered);
    ++with_errors;
  }
  EXPECT_GT(with_errors, 10);
}

TEST_F(BatchTest, PathsOnStandardInputRunInListOrder) {
  // Out of name order, a blank line, and a folder among the files.
  fs::create_directories(dir_ / "more");
  fs::copy_file(dir_ / "in" / (names_[5] + ".xml"), dir_ / "more" / "b.xml");
  fs::copy_file(dir_ / "in" / (names_[6] + ".xml"), dir_ / "more" / "a.xml");
  std::ofstream(dir_ / "more" / "notes.txt") << "not a domain";
  std::vector<std::string> list = {"in/" + names_[2] + ".xml", "in/" + names_[0] + ".xml", "",
                                   "more", "in/" + names_[1] + ".xml"};
  {
    std::ofstream f(dir_ / "list");
    for (const std::string& p : list) f << p << "\n";
  }
  RunResult batch = Run({"plan", "--batch", "-O", "out", "-"}, dir_ / "list");
  std::vector<std::string> expected = {list[0], list[1], "more/a.xml", "more/b.xml", list[4]};
  std::vector<std::string> lines = Lines(batch.out);
  ASSERT_EQ(lines.size(), expected.size()) << batch.out << batch.err;
  int failed = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(expected[i]);
    std::string base = fs::path(expected[i]).filename();
    RunResult single = Run({"plan", expected[i]});
    EXPECT_EQ(lines[i], ExpectedLine(single, expected[i], "out/" + base));
    if (single.status == 0) {
      EXPECT_EQ(Slurp(dir_ / "out" / base), single.out);
    }
    failed += single.status != 0;
  }
  EXPECT_EQ(batch.status, failed > 0 ? 1 : 0);
}

TEST_F(BatchTest, WishOptionsApplyToEveryFileAndAWishForNoDeviceIsEachFilesError) {
  std::vector<std::string> q35;
  for (const std::string& n : names_) {
    if (n.find("-q35-") != std::string::npos && q35.size() < 6) q35.push_back("in/" + n + ".xml");
  }
  ASSERT_EQ(q35.size(), 6u);
  std::vector<std::string> flags = {"--hotplug-slots", "pcie=3", "--wish", "disk:vda:bus=pci"};
  std::vector<std::string> args = {"plan", "--batch", "-O", "out"};
  args.insert(args.end(), q35.begin(), q35.end());
  args.insert(args.end(), flags.begin(), flags.end());
  RunResult batch = Run(args);
  std::vector<std::string> lines = Lines(batch.out);
  ASSERT_EQ(lines.size(), q35.size()) << batch.err;
  int ok = 0, failed = 0, changed = 0;
  for (size_t i = 0; i < q35.size(); ++i) {
    SCOPED_TRACE(q35[i]);
    std::vector<std::string> single_args = {"plan", q35[i]};
    single_args.insert(single_args.end(), flags.begin(), flags.end());
    RunResult single = Run(single_args);
    std::string out = "out/" + fs::path(q35[i]).filename().string();
    EXPECT_EQ(lines[i], ExpectedLine(single, q35[i], out));
    if (single.status == 0) {
      EXPECT_EQ(Slurp(dir_ / out), single.out);
      // The flags took effect: three more free root ports than a plan without them.
      changed += single.out != Run({"plan", q35[i]}).out;
    }
    ok += single.status == 0;
    failed += single.status != 0;
  }
  EXPECT_GT(ok, 0);
  EXPECT_GT(failed, 0);
  EXPECT_EQ(changed, ok);
  EXPECT_EQ(batch.status, 1);

  RunResult none = Run({"check", "--batch", q35[0], q35[1], "--wish", "ua-nic9:bus=pci"});
  EXPECT_EQ(none.status, 1);
  lines = Lines(none.out);
  ASSERT_EQ(lines.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(lines[i], "error " + q35[i] +
                            ": error: the wish for 'ua-nic9' names no device of the domain (a "
                            "device is named by its alias, or disk:TARGET, interface:MAC, "
                            "hostdev:SOURCE, controller:TYPE:INDEX) [bad-wish]");
  }
}

TEST_F(BatchTest, ExplainPrintsEachFilesNotesAfterItsName) {
  std::vector<std::string> files = {"in/" + names_[0] + ".xml", "in/" + names_[1] + ".xml"};
  RunResult batch = Run({"plan", "--batch", "-O", "out", "--explain", files[0], files[1]});
  ASSERT_EQ(batch.status, 0) << batch.err;
  std::string expected;
  for (const std::string& f : files) {
    RunResult single = Run({"plan", "--explain", f});
    ASSERT_EQ(single.status, 0);
    for (const std::string& line : Lines(single.err)) {
      ASSERT_EQ(line.rfind("note: ", 0), 0u) << line;
      expected += "note: " + f + ": " + line.substr(6) + "\n";
    }
  }
  EXPECT_NE(expected, "");
  EXPECT_EQ(batch.err, expected);
}

TEST_F(BatchTest, AFileThatCannotBeReadIsThatFilesErrorOnly) {
  std::string good = "in/" + names_[0] + ".xml";
  RunResult batch = Run({"plan", "--batch", "-O", "out", "missing.xml", good});
  EXPECT_EQ(batch.status, 1);
  std::vector<std::string> lines = Lines(batch.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "error missing.xml: cannot open 'missing.xml': No such file or directory");
  EXPECT_EQ(lines[1], ExpectedLine(Run({"plan", good}), good, "out/" + names_[0] + ".xml"));
}

TEST_F(BatchTest, TwoInputsWrittenToOneFileAreRefusedBeforeAnythingIsWritten) {
  fs::create_directories(dir_ / "a");
  fs::create_directories(dir_ / "b");
  fs::copy_file(dir_ / "in" / (names_[0] + ".xml"), dir_ / "a" / "vm.xml");
  fs::copy_file(dir_ / "in" / (names_[1] + ".xml"), dir_ / "b" / "vm.xml");
  std::string first = "in/" + names_[2] + ".xml";
  RunResult clash = Run({"plan", "--batch", "-O", "out", first, "a/vm.xml", "b/vm.xml"});
  EXPECT_EQ(clash.status, 2);
  EXPECT_EQ(clash.out, "");
  EXPECT_EQ(clash.err,
            "pciplan: 'a/vm.xml' and 'b/vm.xml' would both be written to "
            "'out/vm.xml'\n");
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  // qemu-args drops .xml: vm.xml and vm would both be vm.args.
  fs::copy_file(dir_ / "a" / "vm.xml", dir_ / "b" / "vm");
  clash = Run({"qemu-args", "--batch", "-O", "out", "a/vm.xml", "b/vm"});
  EXPECT_EQ(clash.status, 2);
  EXPECT_NE(clash.err.find("would both be written to 'out/vm.args'"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  // check writes nothing: the same file twice is fine.
  EXPECT_EQ(Run({"check", "--batch", "a/vm.xml", "b/vm.xml", "a/vm.xml"}).out.size() > 0, true);
}

TEST_F(BatchTest, UsageErrors) {
  std::string f = "in/" + names_[0] + ".xml";
  struct Case {
    std::vector<std::string> args;
    std::string err;
  };
  std::vector<Case> cases = {
      {{"plan", "--batch", f}, "pciplan: --batch needs -O OUTDIR\n"},
      {{"qemu-args", "--batch", f}, "pciplan: --batch needs -O OUTDIR\n"},
      {{"plan", "--batch", "-O", "out", "-o", "x.xml", f},
       "pciplan: --batch writes into the folder of -O, not -o\n"},
      {{"plan", f, f}, "pciplan: one input file, or --batch for several\n"},
      {{"plan", "-O", "out", f}, "pciplan: -O needs --batch\n"},
      {{"check", "-j", "2", f}, "pciplan: -j needs --batch\n"},
      {{"plan", "--batch", "-O", "out", "-", "-"},
       "pciplan: '-' (paths on standard input) is given twice\n"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args[1] + " " + c.args.back());
    RunResult r = Run(c.args);
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, c.err);
  }
  RunResult zero = Run({"plan", "--batch", "-O", "out", "-j", "0", f});
  EXPECT_EQ(zero.status, 2);
  EXPECT_NE(zero.err.find("-j"), std::string::npos) << zero.err;
  RunResult slots = Run({"check", "--batch", f, "--hotplug-slots", "pcie=lots"});
  EXPECT_EQ(slots.status, 2);
  EXPECT_EQ(slots.out, "");
  EXPECT_NE(slots.err.find("[bad-wish]"), std::string::npos) << slots.err;
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

}  // namespace
