// mbx-guardd: see src/guardd.h and mbx-guardd(8).
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "src/error.h"
#include "src/guardd.h"

int main(int argc, char** argv) {
    CLI::App app{"mbx-guardd: the BPF LSM guard of mbx for users other than root"};
    mbx::GuarddOptions opt;
    app.add_option("--socket", opt.socket_path, "Unix socket to listen on (default /run/mbx/guard.sock)")
        ->type_name("PATH");
    app.add_option("--pin-dir", opt.pin_dir, "bpffs directory of the guard's maps and links (default /sys/fs/bpf/mbx)")
        ->type_name("DIR");
    CLI11_PARSE(app, argc, argv);
    try {
        return mbx::run_guardd(opt);
    } catch (const mbx::UserError& e) {
        std::fprintf(stderr, "mbx-guardd: %s\n", e.what());
        return 1;
    }
}
