// mbx log --summary: the record of a session folded into counts.
#include <catch2/catch.hpp>

#include "src/log_summary.h"

TEST_CASE("mbx log --summary folds the record: programs, peers, refusals") {
    std::vector<std::string> lines = {
        R"({"time_ms":1,"hook":"guard","denied":false,"mechanism":"bpf lsm","detail":"--guard bpf"})",
        R"({"time_ms":2,"hook":"exec","denied":false,"pid":5,"comm":"sh","path":"/usr/bin/make","argv":["make","-s"]})",
        R"({"time_ms":3,"hook":"exec","denied":false,"pid":6,"comm":"make","path":"/usr/bin/make","argv":["make","install"]})",
        R"({"time_ms":4,"hook":"exec","denied":false,"pid":7,"comm":"sh","argv":["cc","-c","x.c"]})",
        R"({"time_ms":5,"hook":"connect","denied":true,"pid":8,"comm":"curl","address":"10.0.0.1:443"})",
        R"({"time_ms":6,"hook":"connect","denied":true,"pid":8,"comm":"curl","address":"10.0.0.1:443"})",
        R"({"time_ms":7,"hook":"mount","denied":true,"complain":true,"pid":9,"comm":"x"})",
        "not json",
    };
    std::string s = mbx::summarize_log(lines);
    CHECK(s ==
          "runs, by guard (1, 1 in all):\n  1\tbpf lsm (--guard bpf)\n"
          "programs run (2, 3 in all):\n  2\t/usr/bin/make\n  1\tcc\n"
          "network peers (1, 2 in all):\n  2\tconnect 10.0.0.1:443 (refused)\n"
          "refused (1, 2 in all):\n  2\tconnect 10.0.0.1:443\n"
          "would have been refused (--guard complain) (1, 1 in all):\n  1\tmount\n"
          "1 line(s) of the log are not records\n");
    CHECK(mbx::summarize_log({}).starts_with("nothing recorded"));
}

TEST_CASE("mbx log --summary of a monitored run: files by directory, programs from the view") {
    std::vector<std::string> lines = {
        R"({"hook":"monitor","denied":false,"recorded":["view"],"not_recorded":"network addresses","cwd":"/w"})",
        R"({"hook":"open","denied":false,"source":"view","pid":5,"path":"/usr/bin/make","access":"x","result":"ok"})",
        R"({"hook":"open","denied":false,"source":"view","pid":5,"path":"/usr/include/stdio.h","access":"r","result":"ok"})",
        R"({"hook":"open","denied":false,"source":"view","pid":5,"path":"/usr/include/errno.h","access":"r","result":"ok"})",
        R"({"hook":"lookup","denied":false,"source":"view","pid":5,"path":"/usr/include/nope.h","result":"No such file or directory"})",
        R"({"hook":"create","denied":false,"source":"view","pid":6,"path":"/w/x.o","result":"ok"})",
        R"({"hook":"open","denied":false,"source":"view","pid":6,"path":"/etc/shadow","access":"r","result":"Permission denied"})",
    };
    std::string s = mbx::summarize_log(lines);
    CHECK(s ==
          "monitored (--monitor); not recorded: network addresses\n"
          "programs run (1, 1 in all):\n  1\t/usr/bin/make\n"
          "files, by directory (4):\n"
          "  /usr/include\tread 2, looked up, absent 1\n"
          "  /etc\tfailed 1\n"
          "  /usr/bin\trun 1\n"
          "  /w\twritten 1\n");
}
