// mbx: the command line. Every command and option is declared here with
// CLI11; the work is done by the session store, the launcher and commit/.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>
#include <iostream>

#include "src/commands.h"
#include "src/commit_command.h"
#include "src/diff_command.h"
#include "src/doctor.h"
#include "src/log_command.h"
#include "src/policy_command.h"
#include "src/profile_command.h"
#include "src/run_policy.h"
#include "src/error.h"
#include "src/launcher.h"
#include "src/session_scan.h"

int main(int argc, char** argv) {
    spdlog::set_pattern("mbx: %l: %v");
    spdlog::set_level(spdlog::level::warn);

    CLI::App app{"mbx: run a command in a copy-on-write sandbox, then review and keep or drop its changes"};
    app.name("mbx");
    app.set_version_flag("--version", std::string("mbx ") + MBX_VERSION);
    app.require_subcommand(1);
    bool verbose = false;
    app.add_flag("-v,--verbose", verbose, "Print diagnostics");
    app.footer("Sessions live in $MBX_HOME (default ~/.local/share/mbx). See mbx(1).");

    mbx::RunOptions run;
    auto* c_run = app.add_subcommand("run", "Run CMD in a sandbox; its writes land in a session's layer");
    c_run->add_option("--session", run.session, "Session to create or continue (default: a new one)")
        ->type_name("NAME");
    c_run->add_flag("--user", run.keep_user, "Keep your own identity inside (default: fake root)");
    c_run->add_option("--net", run.net,
                      "Network: host (default), none (own loopback only), loopback (the host's) or "
                      "allow=ADDR[/PREFIX][:PORT[-PORT]],... (the last two need the guard)")
        ->type_name("MODE");
    // One value per flag, so that "--bind DIR -- CMD" ends the options at "--".
    c_run->add_option("--hide", run.hide, "Make a host path invisible inside (repeatable)")
        ->allow_extra_args(false)
        ->type_name("PATH");
    c_run->add_option("--bind", run.bind, "Show a host path writable at the same place (repeatable)")
        ->allow_extra_args(false)
        ->type_name("PATH");
    c_run->add_flag("--keep-tmp", run.keep_tmp, "Layer /tmp and /var/tmp instead of private tmpfs");
    c_run->add_option("--guard", run.guard,
                      "auto (default: BPF LSM when it loads, else Landlock and seccomp), bpf (or fail), "
                      "landlock (the fallback), off, or complain (BPF LSM logging what it would deny, denying nothing)")
        ->check(CLI::IsMember({"auto", "bpf", "landlock", "off", "complain"}))
        ->type_name("MODE");
    c_run->add_option("--pass-fd", run.pass_fds, "Let CMD inherit this descriptor too (repeatable)")
        ->allow_extra_args(false)
        ->type_name("N");
    c_run->add_option("--exec-allow", run.exec_allow,
                      "Only these executables may run: full paths, comma-separated (repeatable; needs the guard)")
        ->allow_extra_args(false)
        ->type_name("PATH,...");
    c_run->add_option("--exec-deny", run.exec_deny, "This executable may not run (repeatable; needs the guard)")
        ->allow_extra_args(false)
        ->type_name("PATH");
    c_run->add_option("--writable", run.writable,
                      "Writes fail (EROFS) outside the paths given so (repeatable; /tmp stays private and writable)")
        ->allow_extra_args(false)
        ->type_name("PATH");
    c_run->add_option("--readonly", run.readonly, "Never writable, not even in the layer (repeatable)")
        ->allow_extra_args(false)
        ->type_name("PATH");
    std::string profile;
    c_run->add_option("--profile", profile, "A policy profile: a name (see 'mbx profile list') or a .toml file")
        ->type_name("NAME|FILE");
    c_run->add_flag("--allow-weaker", run.allow_weaker,
                    "Run without the rules this host's guard cannot enforce (warned), instead of refusing");
    c_run->add_flag("--monitor", run.monitor,
                    "Record what CMD opens, changes, runs and connects to in the session's log; enforce nothing "
                    "beyond the layer unless --guard says so (see 'mbx profile generate')");
    bool print_policy = false;
    c_run->add_flag("--print-policy", print_policy, "Print the effective policy (profile and flags) as TOML; run nothing");
    c_run->add_flag("-i,--interactive", run.review, "Review the changes entry by entry when CMD exits (mbx commit -i)");
    c_run->footer("Usage: mbx run [OPTIONS] [--] CMD [ARGS...]\n"
                  "The command starts at -- or at the first argument that is not an option of run.\n"
                  "Exit status: the command's (128+N if killed by signal N); 125 if mbx failed.\n"
                  "Example: mbx run -- make install     See mbx-run(1).");

    mbx::DiffArgs diff_args;
    auto* c_diff = app.add_subcommand("diff", "Show a session's changes against the host (default: most recent)");
    c_diff->add_option("args", diff_args.args, "[SESSION] [PATH...]: paths as seen inside, absolute")->type_name("");
    c_diff->add_flag("--stat", diff_args.stat, "Lines added and removed per entry");
    c_diff->add_flag("-p,--patch", diff_args.patch, "Unified diffs of the contents");
    c_diff->add_flag("--json", diff_args.json, "Print JSON (see mbx-diff(1) for the schema)");
    c_diff->add_option("--color", diff_args.color, "always, never or auto (default; NO_COLOR turns it off)")
        ->type_name("WHEN");
    c_diff->add_flag("--no-pager", diff_args.no_pager, "Do not page the output on a terminal");
    c_diff->add_flag("--times", diff_args.times, "Count a changed modification time as a change (m)");
    c_diff->footer("Letters: A added, M modified, D deleted, T type changed, m metadata only, C conflict with the host.");

    mbx::CommitArgs commit_args;
    auto* c_commit = app.add_subcommand("commit", "Apply a session's changes to the host (default: most recent)");
    c_commit->add_option("args", commit_args.args, "[SESSION] [PATH...]: paths as seen inside, absolute")->type_name("");
    c_commit->add_flag("-f,--force", commit_args.force, "Apply conflicts too (the host's version is kept for revert)");
    c_commit->add_flag("-i,--interactive", commit_args.interactive, "Ask entry by entry: [y]es [n]o [d]iff [a]ll [q]uit");
    c_commit->add_flag("--resume", commit_args.resume, "Only finish an interrupted commit");
    c_commit->add_flag("-n,--dry-run", commit_args.dry_run, "Print what would be committed; change nothing");
    c_commit->footer("Exit status: 0 all applied, 1 some entries failed, 3 conflicts skipped, 4 entries need root.\n"
                     "See mbx-commit(1).");

    mbx::RevertArgs revert_args;
    auto* c_revert = app.add_subcommand("revert", "Undo the last commit of a session (default: the last commit)");
    c_revert->add_option("session", revert_args.session, "Session name")->type_name("SESSION");
    c_revert->add_flag("-f,--force", revert_args.force, "Revert what the host did not change since, leave the rest");

    mbx::PolicyArgs policy_args;
    auto* c_policy = app.add_subcommand("policy", "Show or change a running sandbox's network and exec policy (mbx-guardd)");
    c_policy->add_option("session", policy_args.session, "Session name (default: most recent)")->type_name("SESSION");
    c_policy->add_option("--net", policy_args.net, "host, none, loopback or allow=ADDR[/PREFIX][:PORT[-PORT]],...")
        ->type_name("MODE");
    c_policy->add_option("--exec-allow", policy_args.exec_allow, "Only these executables may run from now on")
        ->allow_extra_args(false)
        ->type_name("PATH,...");
    c_policy->add_option("--exec-deny", policy_args.exec_deny, "This executable may not run from now on")
        ->allow_extra_args(false)
        ->type_name("PATH");
    c_policy->add_flag("--exec-any", policy_args.exec_none, "Drop the exec lists: any executable may run");
    c_policy->add_flag("--show", policy_args.show, "Print the sandbox's current policy");

    mbx::LogArgs log_args;
    mbx::ProfileArgs profile_args;
    auto* c_profile = app.add_subcommand("profile", "Policy profiles: list them, or show one (see mbx-profile(5))");
    c_profile->require_subcommand(1);
    c_profile->add_subcommand("list", "The profiles found, built-in ones last")->add_flag("--json", profile_args.json, "Print JSON");
    auto* c_profile_show = c_profile->add_subcommand("show", "A profile with its includes, as TOML");
    c_profile_show->add_option("profile", profile_args.show, "Name or file")->required()->type_name("NAME|FILE");
    auto* c_profile_generate = c_profile->add_subcommand(
        "generate", "The tightest profile that allows what a monitored run did (mbx run --monitor), as TOML");
    c_profile_generate->add_option("session", profile_args.session, "Session name (default: most recent)")
        ->type_name("SESSION");
    c_profile_generate->callback([&] { profile_args.generate = true; });

    auto* c_log = app.add_subcommand("log", "The guard's record of a session: execs and denials (default: most recent)");
    c_log->add_option("session", log_args.session, "Session name")->type_name("SESSION");
    c_log->add_flag("--json", log_args.json, "One JSON object per line (see mbx-log(1))");
    c_log->add_flag("-f,--follow", log_args.follow, "Keep printing while the session runs");
    c_log->add_flag("--summary", log_args.summary, "The programs run, network peers and refusals, with counts")
        ->excludes("--json")
        ->excludes("--follow");

    mbx::DoctorArgs doctor_args;
    auto* c_doctor = app.add_subcommand("doctor", "What this machine offers mbx (namespaces, FUSE, BPF LSM, Landlock), with fixes");
    c_doctor->add_flag("--json", doctor_args.json, "Print JSON");

    mbx::SessionArgs list_args, status_args;
    auto* c_list = app.add_subcommand("list", "List sessions: age, size, changes, last command");
    c_list->add_flag("--json", list_args.json, "Print JSON");
    auto* c_status = app.add_subcommand("status", "List the changes of a session (default: most recent)");
    c_status->add_option("session", status_args.session, "Session name")->type_name("SESSION");
    c_status->add_flag("--json", status_args.json, "Print JSON");
    std::vector<std::string> discard_args;
    auto* c_discard = app.add_subcommand("discard", "Throw a session away, or only some paths of it (default: most recent)");
    c_discard->add_option("args", discard_args, "[SESSION] [PATH...]: paths as seen inside, absolute")->type_name("");

    // The command of "mbx run" is split off before CLI11 sees it: it starts at "--" or
    // at the first argument that is not one of run's options, so that
    // "mbx run ls -la" and "mbx run --bind D -- sh -c ..." both mean what they say.
    std::vector<std::string> args(argv + 1, argv + argc);
    for (size_t i = 0; i < args.size(); ++i) {
        if (args[i].starts_with("-")) continue;  // global options before the subcommand
        if (args[i] != "run") break;
        for (size_t j = i + 1; j < args.size(); ++j) {
            const std::string& a = args[j];
            if (a == "--" || !a.starts_with("-")) {
                run.argv.assign(args.begin() + j + (a == "--" ? 1 : 0), args.end());
                args.resize(j);
                break;
            }
            if (a == "--session" || a == "--net" || a == "--hide" || a == "--bind" || a == "--guard" ||
                a == "--pass-fd" || a == "--exec-allow" || a == "--exec-deny" || a == "--writable" ||
                a == "--readonly" || a == "--profile")
                ++j;  // its value
        }
        break;
    }
    std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector

    try {
        app.parse(args);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);
        std::fprintf(stderr, "mbx: %s (see 'mbx %s--help')\n", e.what(),
                     app.get_subcommands().empty() ? "" : (app.get_subcommands()[0]->get_name() + " ").c_str());
        return 125;
    }
    if (verbose) spdlog::set_level(spdlog::level::debug);
    if (*c_run) {
        if (run.argv.empty() && !print_policy) {
            std::fprintf(stderr, "mbx: no command given: mbx run [OPTIONS] -- CMD [ARGS...]\n");
            return 125;
        }
    }

    try {
        mbx::SessionStore store(mbx::SessionStore::default_home());
        if (*c_doctor) return mbx::cmd_doctor(doctor_args);
        if (*c_profile) return mbx::cmd_profile(store, profile_args);
        if (*c_run) {
            // The effective policy: the profile, then the flags over it.
            mbx::Profile policy = profile.empty() ? mbx::Profile{} : mbx::load_profile(profile);
            policy.merge(mbx::flags_profile(run, {c_run->count("--net") > 0, c_run->count("--guard") > 0}));
            policy = mbx::expand_paths(policy);
            if (print_policy) {
                std::fputs(mbx::profile_to_toml(policy).c_str(), stdout);
                return 0;
            }
            mbx::apply_policy(policy, run);
        }
        if (!*c_commit) mbx::finish_interrupted_commits(store);  // commit finishes its own
        if (*c_run) {
            std::string used;
            int rc = mbx::run_sandboxed(run, store, &used);
            if (!run.review || used.empty()) return rc;
            mbx::CommitArgs review;
            review.args = {used};
            review.interactive = true;
            int crc = mbx::cmd_commit(store, review);
            return rc ? rc : crc;
        }
        if (*c_list) return mbx::cmd_list(store, list_args);
        if (*c_log) return mbx::cmd_log(store, log_args);
        if (*c_policy) return mbx::cmd_policy(store, policy_args);
        if (*c_status) return mbx::cmd_status(store, status_args);
        if (*c_diff) return mbx::cmd_diff(store, diff_args);
        if (*c_commit) return mbx::cmd_commit(store, commit_args);
        if (*c_revert) return mbx::cmd_revert(store, revert_args);
        if (*c_discard) {
            mbx::SessionPaths p = mbx::parse_session_paths(discard_args);
            if (p.paths.empty()) return mbx::cmd_discard(store, {p.session, false});
            return mbx::cmd_discard_paths(store, store.resolve(p.session), p.paths);
        }
    } catch (const mbx::UserError& e) {
        std::fprintf(stderr, "mbx: %s\n", e.what());
        return 125;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mbx: internal error: %s\n", e.what());
        return 125;
    }
    return 0;
}
