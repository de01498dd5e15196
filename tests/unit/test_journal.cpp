// The commit plan's journal form and the journal's record of finished steps.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "commit/journal.h"
#include "commit/plan.h"
#include "overlay/sys/sys.h"

using namespace mbx;
using namespace mbx::commit;

namespace {

Plan sample_plan() {
    Plan p;
    p.id = "0123456789abcdef";
    p.entries.push_back({"/etc/caf\xe9\n\"x\"", 'M', false});  // Latin-1, newline, quotes
    p.entries.push_back({"/usr/local/new", 'A', true});
    p.pending.push_back({"/etc/gone", 'D', false});
    Step s;
    s.kind = StepKind::PlaceFile;
    s.path = p.entries[0].path;
    s.entry = 0;
    s.mode = S_IFREG | 04755;
    s.uid = 0;
    s.gid = -1;
    s.atime_ns = 1;
    s.mtime_ns = 1700000000123456789;
    s.backup = true;
    s.before.exists = true;
    s.before.mode = S_IFREG | 0644;
    s.before.ino = 42;
    s.before.size = 7;
    p.steps.push_back(s);
    Step d;
    d.kind = StepKind::PlaceSymlink;
    d.path = "/usr/local/new/link";
    d.entry = 1;
    d.mode = S_IFLNK | 0777;
    d.target = "../\xff target";
    p.steps.push_back(d);
    return p;
}

struct TempDir {
    std::string path;
    UniqueFd fd;
    TempDir() {
        char t[] = "/tmp/mbx-unit-journal.XXXXXX";
        REQUIRE(::mkdtemp(t));
        path = t;
        fd.reset(::open(t, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    }
    ~TempDir() {
        fd.reset();
        std::system(("rm -rf '" + path + "'").c_str());
    }
};

}  // namespace

TEST_CASE("a plan survives its journal form byte for byte") {
    Plan p = sample_plan();
    auto back = plan_from_text(plan_to_text(p));
    REQUIRE(back);
    CHECK(back->id == p.id);
    REQUIRE(back->entries.size() == 2);
    CHECK(back->entries[0].path == p.entries[0].path);
    CHECK(back->entries[1].dir);
    REQUIRE(back->pending.size() == 1);
    CHECK(back->pending[0].kind == 'D');
    REQUIRE(back->steps.size() == 2);
    CHECK(back->steps[0].kind == StepKind::PlaceFile);
    CHECK(back->steps[0].mode == (S_IFREG | 04755));
    CHECK(back->steps[0].uid == 0);
    CHECK(back->steps[0].gid == -1);
    CHECK(back->steps[0].mtime_ns == 1700000000123456789);
    CHECK(back->steps[0].before.ino == 42);
    CHECK(back->steps[1].target == "../\xff target");
    CHECK_FALSE(back->steps[1].before.exists);
}

TEST_CASE("a damaged plan is refused, not half read") {
    CHECK_FALSE(plan_from_text(""));
    CHECK_FALSE(plan_from_text("{\"version\": 99}"));
    std::string t = plan_to_text(sample_plan());
    CHECK_FALSE(plan_from_text(t.substr(0, t.size() / 2)));
    // A step pointing at an entry that does not exist.
    auto p = sample_plan();
    p.steps[0].entry = 7;
    CHECK_FALSE(plan_from_text(plan_to_text(p)));
}

TEST_CASE("the journal records steps and ignores a line cut short") {
    TempDir d;
    Plan p = sample_plan();
    {
        Journal j = Journal::create(d.fd.get(), kJournalDir, p, ::geteuid(), ::getegid());
        j.record(0, StepOutcome{0, 11, 22, 33});
        CHECK_THROWS(Journal::create(d.fd.get(), kJournalDir, p, ::geteuid(), ::getegid()));
    }
    // A crash in the middle of writing the next record.
    int done = ::open((d.path + "/journal/done").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    REQUIRE(done >= 0);
    REQUIRE(::write(done, "1 ok 5", 6) == 6);
    ::close(done);
    auto j = Journal::open(d.fd.get(), kJournalDir);
    REQUIRE(j);
    CHECK(j->plan().id == p.id);
    REQUIRE(j->outcomes().size() == 1);
    CHECK(j->outcomes().at(0).ino == 11);
    CHECK(j->outcomes().at(0).mtime_ns == 22);
    CHECK_FALSE(j->host_done());
    CHECK_FALSE(Journal::open(d.fd.get(), "absent"));
}

TEST_CASE("is_below and the path helpers work on whole components") {
    CHECK(is_below("/a/b", "/a"));
    CHECK(is_below("/a", "/a"));
    CHECK_FALSE(is_below("/ab", "/a"));
    CHECK(is_below("/x", "/"));
    CHECK(parent_of("/a/b") == "/a");
    CHECK(parent_of("/a") == "/");
    CHECK(base_of("/a/b") == "b");
}
