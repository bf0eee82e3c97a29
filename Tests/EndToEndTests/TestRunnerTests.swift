import Foundation
import Testing

/// `ipcplay test`, hang reports, deadlocks, jitter seeds.
@Suite("The scenario test runner")
struct TestRunnerTests {
    static let fixtures = "Tests/EndToEndTests/Fixtures/runner"

    @Test func onePassingThreeFailing() throws {
        let r = try Ipcplay.run(["test", "--timeout", "3", Self.fixtures])
        #expect(r.status != 0)
        #expect(r.stdout.hasSuffix("1 passed, 3 failed\n"), "\(r.combined)")
        #expect(r.seconds < 60, "took \(r.seconds) s")
        #expect(r.stdout.contains("PASS  \(Self.fixtures)/pass_test.lua"))
        #expect(r.stdout.contains("FAIL  \(Self.fixtures)/assert_test.lua"))
        #expect(r.stdout.contains("assert_test.lua:2: the table: expected"), "the failing assertion's file:line")
        #expect(r.stdout.contains("FAIL  \(Self.fixtures)/hang_test.lua"))
        #expect(r.stdout.contains("blocked in queue:get on queue#1"))
        #expect(r.stdout.contains("at \(Self.fixtures)/hang_test.lua:3"), "the hang names queue:get and its line")
        #expect(r.stdout.contains("FAIL  \(Self.fixtures)/child_error_test.lua"))
        #expect(r.stdout.contains("which nothing joined"))
        #expect(r.stdout.contains("rerun: ipcplay test --seed "))
    }

    @Test(.needsPerlTAPParser) func tapParsesWithPerlsTAPParser() throws {
        for version in ["14", "13"] {
            let r = try Ipcplay.run(["test", "--timeout", "3", "--tap", "--tap-version", version, Self.fixtures])
            #expect(r.status != 0)
            #expect(r.stdout.hasPrefix("TAP version \(version)\n1..4\n"), "\(r.stdout)")
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tap-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let tap = dir.appendingPathComponent("out.tap")
            try r.stdout.write(to: tap, atomically: true, encoding: .utf8)
            let check = """
                use TAP::Parser;
                my $known14 = $TAP::Parser::VERSION >= 3.48 ? 1 : 0;
                open my $f, '<', $ARGV[0] or die;
                my $tap = do { local $/; <$f> };
                my $p = TAP::Parser->new({ tap => $tap });
                my ($yaml, $tests) = (0, 0);
                while (my $r = $p->next) { $yaml++ if $r->is_yaml; $tests++ if $r->is_test; }
                my @errors = $p->parse_errors;
                print "known14=$known14 tests=$tests passed=", scalar($p->passed), " failed=", scalar($p->failed),
                      " yaml=$yaml good_plan=", ($p->is_good_plan ? 1 : 0), " errors=", scalar(@errors), "\\n";
                print "error: $_\\n" for @errors;
                """
            let script = dir.appendingPathComponent("check.pl")
            try check.write(to: script, atomically: true, encoding: .utf8)
            let perl = Process()
            perl.executableURL = URL(fileURLWithPath: "/usr/bin/perl")
            perl.arguments = [script.path, tap.path]
            let pipe = Pipe()
            perl.standardOutput = pipe
            try perl.run()
            let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            perl.waitUntilExit()
            #expect(out.contains("tests=4 passed=1 failed=3 yaml=3 good_plan=1"), "\(out)")
            if version == "13" || out.contains("known14=1") {
                #expect(out.contains("errors=0"), "TAP \(version): \(out)")
            } else {
                // Test-Harness before 3.48 does not know TAP 14: its only complaint may be
                // the version line; everything else must parse.
                let errors = out.split(separator: "\n").filter { $0.hasPrefix("error: ") }
                #expect(errors.allSatisfy { $0.contains("TAP specified version 14") }, "\(out)")
            }
        }
    }

    @Test(.needsPython3) func junitLoadsInPythonsXMLParser() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("junit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let xml = dir.appendingPathComponent("report.xml")
        let r = try Ipcplay.run(["test", "--timeout", "3", "--junit", xml.path, Self.fixtures])
        #expect(r.status != 0)
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", "-c", """
            import sys, xml.etree.ElementTree as ET
            root = ET.parse(sys.argv[1]).getroot()
            suite = root.find("testsuite")
            cases = suite.findall("testcase")
            failed = [c.get("name") for c in cases if c.find("failure") is not None]
            print(root.tag, suite.get("tests"), suite.get("failures"), len(cases), len(failed))
            """, xml.path]
        let pipe = Pipe()
        check.standardOutput = pipe
        try check.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        #expect(check.terminationStatus == 0)
        #expect(out == "testsuites 4 3 4 3\n", "\(out)")
    }

    @Test func runTimeoutNamesTheBlockedCallAndLine() throws {
        let r = try Ipcplay.runLua("local q = ipc.queue()\nlocal p = ipc.spawn(function() ipc.sleep(60) end)\nq:get()\n",
                                   options: ["--timeout", "1"])
        #expect(r.status == 124, "\(r.combined)")
        #expect(r.seconds < 30, "took \(r.seconds) s")  // not the child's 60 s
        #expect(r.stderr.contains("blocked in queue:get on queue#1"), "\(r.stderr)")
        #expect(r.stderr.contains("scenario.lua:3"), "\(r.stderr)")
        #expect(r.stderr.contains("blocked in ipc.sleep"))
    }

    @Test func deadlocksAreReportedAtOnce() throws {
        // Two processes each wait for the other: no timeout needed.
        let r = try Ipcplay.runLua("""
            local a, b = ipc.queue(), ipc.queue()
            local p = ipc.spawn(function() a:get() b:put(1) end)
            b:get()
            a:put(1)
            """)
        #expect(r.status == 124, "\(r.combined)")
        #expect(r.seconds < 60, "took \(r.seconds) s")
        #expect(r.stderr.contains("deadlock"))
        #expect(r.stderr.contains("blocked in queue:get on queue#2"), "\(r.stderr)")
        #expect(r.stderr.contains("scenario.lua:2") && r.stderr.contains("scenario.lua:3"))
        // A lone process waiting on its own pipe, and a lock held by a sibling that waits.
        let lone = try Ipcplay.runLua("local a, b = ipc.pipe()\na:recv()\n")
        #expect(lone.status == 124 && lone.stderr.contains("blocked in connection:recv"), "\(lone.combined)")
        // No false alarm: a consumer that waits while its producer sleeps, and a wait with a timeout.
        let busy = try Ipcplay.runLua("""
            local q = ipc.queue()
            local p = ipc.spawn(function() for i = 1, 3 do ipc.sleep(0.7) q:put(i) end end)
            for i = 1, 3 do assert(q:get() == i) end
            local e = ipc.event()
            assert(e:wait(1.5) == false)
            print("fine")
            """)
        #expect(busy.status == 0 && busy.stdout == "fine\n", "\(busy.combined)")
        let off = try Ipcplay.runLua("local q = ipc.queue()\nq:get()\n", options: ["--no-deadlock-check", "--timeout", "1.5"])
        #expect(off.status == 124 && off.stderr.contains("timeout"), "\(off.combined)")
    }

    @Test func jitterPrintsItsSeedAndReplaysWithIt() throws {
        let script = "local q = ipc.queue()\nlocal p = ipc.spawn(function() for i = 1, 20 do q:put(i) end end)\nfor i = 1, 20 do assert(q:get() == i) end\nprint('ok')\n"
        let r = try Ipcplay.runLua(script, options: ["--jitter", "2"])
        #expect(r.status == 0 && r.stdout == "ok\n", "\(r.combined)")
        #expect(r.stderr.contains("jitter up to 2.0 ms, seed "), "\(r.stderr)")
        let seeded = try Ipcplay.runLua(script, options: ["--jitter", "2", "--seed", "1234"])
        #expect(seeded.status == 0 && !seeded.stderr.contains("seed"), "a given seed is not announced again")
        let failing = try Ipcplay.run(["test", "--jitter", "1", "--seed", "77", "--timeout", "3", "\(Self.fixtures)/assert_test.lua"])
        #expect(failing.stdout.contains("rerun: ipcplay test --seed 77 --jitter 1 --timeout 3 \(Self.fixtures)/assert_test.lua"), "\(failing.stdout)")
    }

    @Test func repeatFilterAndJobs() throws {
        let r = try Ipcplay.run(["test", "--repeat", "3", "--filter", "pass", Self.fixtures])
        #expect(r.status == 0)
        #expect(r.stdout == "PASS  \(Self.fixtures)/pass_test.lua (" + r.stdout.dropFirst("PASS  \(Self.fixtures)/pass_test.lua (".count), "\(r.stdout)")
        #expect(r.stdout.hasSuffix("1 passed, 0 failed\n"))
        let failing = try Ipcplay.run(["test", "--repeat", "5", "--filter", "assert", Self.fixtures])
        #expect(failing.stdout.contains("on run 1 of 5"), "\(failing.stdout)")
        let jobs = try Ipcplay.run(["test", "--jobs", "4", "--timeout", "3", Self.fixtures])
        #expect(jobs.stdout.hasSuffix("1 passed, 3 failed\n"), "\(jobs.stdout)")
        // Each result is printed as one block: the FAIL line is followed by its details.
        let blocks = ("\n" + jobs.stdout).components(separatedBy: "\nFAIL  ").dropFirst()
        #expect(blocks.count == 3)
        #expect(try Ipcplay.run(["test", "no/such/folder"]).status == 2)
    }

    @Test func testHelpers() throws {
        let r = try Ipcplay.runLua("""
            local t = ipc.test
            t.eq({1, {2, 0/0}}, {1, {2, 0/0}})
            local err = t.raises(function() t.eq(1, 2, "numbers") end, "numbers: expected 2, got 1")
            assert(err:find("scenario.lua:3:"), "eq fails with the caller's line: " .. err)
            t.raises(function() error("boom") end)
            local ok, e2 = pcall(function() t.raises(function() end) end)
            assert(not ok and e2:find("scenario.lua:6: expected an error, got none"), e2)
            ok, e2 = pcall(t.raises, function() error("other") end, "^wanted")
            assert(not ok and e2:find("expected an error matching"), e2)
            print("helpers ok")
            """)
        #expect(r.status == 0 && r.stdout == "helpers ok\n", "\(r.combined)")
    }

    /// `--explore N`: each test under N schedules; a failing one shows its shrunk schedule,
    /// its explanation and its replay line, in the text, TAP and JUnit reports.
    @Test func exploreShowsTheScheduleThePairAndTheReplay() throws {
        let dir = try Ipcplay.newTmpDirectory("ipcplay-explore")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Ipcplay.lostUpdates(rounds: 3).write(to: dir.appendingPathComponent("race_test.lua"), atomically: true, encoding: .utf8)
        try """
            local v = ipc.value("i", 0)
            local ps = {ipc.spawn(function() v:add(1) end), ipc.spawn(function() v:add(1) end)}
            for _, p in ipairs(ps) do p:join() end
            assert(v.value == 2)
            """.write(to: dir.appendingPathComponent("atomic_test.lua"), atomically: true, encoding: .utf8)
        let junit = dir.appendingPathComponent("junit.xml")
        let r = try Ipcplay.run(["test", "--explore", "200", "--seed", "3", "--jobs", "2", "--junit", junit.path, dir.path])
        #expect(r.status == 1, "\(r.combined)")
        #expect(r.stdout.contains("PASS  \(dir.path)/atomic_test.lua"), "\(r.stdout)")
        #expect(r.stdout.contains("FAIL  \(dir.path)/race_test.lua"), "\(r.stdout)")
        #expect(r.stdout.contains("      schedule: "), "\(r.stdout)")
        #expect(r.stdout.contains("      atomicity: value read at ") && r.stdout.contains("race_test.lua:2"), "\(r.stdout)")
        #expect(r.stdout.contains("      replay: ipcplay replay --timeout 30 s2."), "\(r.stdout)")
        #expect(r.stdout.hasSuffix("1 passed, 1 failed\n"), "\(r.stdout)")
        let xml = try String(contentsOf: junit, encoding: .utf8)
        #expect(xml.contains("atomicity: value read at") && xml.contains("replay: ipcplay replay --timeout 30 s2."), "\(xml)")
        let tap = try Ipcplay.run(["test", "--explore", "200", "--seed", "3", "--tap", dir.path])
        #expect(tap.stdout.contains("  explanation: \"atomicity: value read at"), "\(tap.stdout)")
        #expect(tap.stdout.contains("  replay: \"ipcplay replay --timeout 30 s2."), "\(tap.stdout)")
        // The replay line replays the failure.
        let line = try #require(r.stdout.split(separator: "\n").first { $0.contains("replay: ipcplay replay") })
        let words = line.split(separator: " ").map(String.init).drop { $0 != "ipcplay" }.dropFirst()
        let again = try Ipcplay.run(Array(words))
        #expect(again.status == 1 && again.stderr.contains("lost updates"), "\(again.combined)")
    }

    /// Tests of every failure kind, in a fresh folder: an error, a deadlock, a hang.
    static func failingTests() throws -> URL {
        let dir = try Ipcplay.newTmpDirectory("ipcplay-kinds")
        try "local x = nil\nassert(x, \"no x: here\")\n".write(to: dir.appendingPathComponent("error_test.lua"), atomically: true, encoding: .utf8)
        try """
            local a, b = ipc.queue(), ipc.queue()
            local p = ipc.spawn(function() a:get() b:put(1) end)
            b:get()
            a:put(1)
            p:join()
            """.write(to: dir.appendingPathComponent("deadlock_test.lua"), atomically: true, encoding: .utf8)
        try """
            local q = ipc.queue()
            local p = ipc.spawn(function() ipc.sleep(100) end)
            q:get()
            """.write(to: dir.appendingPathComponent("hang_test.lua"), atomically: true, encoding: .utf8)
        return dir
    }

    /// Issue 30, point 2: a deadlock in `test` lists every blocked process (its call, its
    /// object, its file:line) in the text, TAP and JUnit reports alike; so does a hang.
    @Test func deadlockAndHangListEveryBlockedProcess() throws {
        let dir = try Self.failingTests()
        defer { try? FileManager.default.removeItem(at: dir) }
        let deadlock = dir.appendingPathComponent("deadlock_test.lua").path
        let hang = dir.appendingPathComponent("hang_test.lua").path
        let junit = dir.appendingPathComponent("junit.xml")
        let text = try Ipcplay.run(["test", "--timeout", "2", "--junit", junit.path, deadlock, hang])
        #expect(text.status == 1, "\(text.combined)")
        let lines = text.stdout.split(separator: "\n").map(String.init)
        func listed(_ name: String, _ call: String, _ at: String, in lines: [String]) -> Bool {
            lines.contains { $0.contains("\(name) (pid ") && $0.contains("blocked in \(call)") && $0.hasSuffix(", at \(at)") }
        }
        #expect(listed("MainProcess", "queue:get on queue#2", "\(deadlock):3", in: lines), "\(text.stdout)")
        #expect(listed("Process-1", "queue:get on queue#1", "\(deadlock):2", in: lines), "\(text.stdout)")
        #expect(listed("MainProcess", "queue:get on queue#1", "\(hang):3", in: lines), "\(text.stdout)")
        #expect(listed("Process-1", "ipc.sleep", "\(hang):2", in: lines), "\(text.stdout)")
        let xml = try String(contentsOf: junit, encoding: .utf8)
        let xmlLines = xml.split(separator: "\n").map(String.init)
        #expect(listed("MainProcess", "queue:get on queue#2", "\(deadlock):3", in: xmlLines), "\(xml)")
        #expect(listed("Process-1", "queue:get on queue#1", "\(deadlock):2", in: xmlLines), "\(xml)")
        #expect(listed("Process-1", "ipc.sleep", "\(hang):2", in: xmlLines), "\(xml)")
        // Who holds what each waits for: two locks taken in opposite orders.
        let locks = dir.appendingPathComponent("locks_test.lua")
        try """
            local a, b = ipc.lock({name = "a"}), ipc.lock({name = "b"})
            local ready = ipc.event()
            a:acquire()
            local p = ipc.spawn(function() b:acquire(); ready:set(); a:acquire() end)
            ready:wait()
            b:acquire()
            """.write(to: locks, atomically: true, encoding: .utf8)
        let held = try Ipcplay.run(["test", "--timeout", "5", locks.path])
        let heldLines = held.stdout.split(separator: "\n").map(String.init)
        #expect(heldLines.contains { $0.contains("MainProcess (pid ") && $0.contains("blocked in lock:acquire on b") && $0.contains("locks_test.lua:6, held by Process-1 (pid ") },
                "\(held.stdout)")
        #expect(heldLines.contains { $0.contains("Process-1 (pid ") && $0.contains("blocked in lock:acquire on a") && $0.contains("locks_test.lua:4, held by MainProcess (pid ") },
                "\(held.stdout)")
        let heldTAP = try Ipcplay.run(["test", "--timeout", "5", "--tap", locks.path])
        #expect(heldTAP.stdout.contains("      held_by: \"Process-1 (pid "), "\(heldTAP.stdout)")
        let tap = try Ipcplay.run(["test", "--timeout", "2", "--tap", deadlock])
        #expect(tap.stdout.contains("""
              blocked:
                - process: "MainProcess"
            """), "\(tap.stdout)")
        #expect(tap.stdout.contains("      call: \"queue:get\"\n      object: \"queue#2\"\n      at: \"\(deadlock):3\"\n"), "\(tap.stdout)")
        #expect(tap.stdout.contains("    - process: \"Process-1\"\n"), "\(tap.stdout)")
        #expect(tap.stdout.contains("      at: \"\(deadlock):2\"\n"), "\(tap.stdout)")
    }

    /// Issue 30, point 5: TAP 13 from every failure kind (error, deadlock, hang, an explore
    /// finding, a deadlock found by explore) goes through Debian 12's `prove` without a
    /// parse error, and TAP::Parser reads each YAML block, the blocked list as mappings.
    @Test(.needsProve) func proveReadsEveryFailureKind() throws {
        let dir = try Self.failingTests()
        defer { try? FileManager.default.removeItem(at: dir) }
        let explored = try Ipcplay.newTmpDirectory("ipcplay-kinds")
        defer { try? FileManager.default.removeItem(at: explored) }
        try Ipcplay.locksInOppositeOrders.write(to: explored.appendingPathComponent("locks_test.lua"), atomically: true, encoding: .utf8)
        try Ipcplay.lostUpdates(rounds: 3).write(to: explored.appendingPathComponent("race_test.lua"), atomically: true, encoding: .utf8)
        for (options, folder, files) in [("--timeout 2", dir, ["deadlock_test.lua", "error_test.lua", "hang_test.lua"]),
                                         ("--explore 200 --seed 3", explored, ["locks_test.lua", "race_test.lua"])] {
            let paths = files.map { folder.appendingPathComponent($0).path }
            let prove = try Ipcplay.command("/usr/bin/env", ["prove", "--exec", "\(Ipcplay.binary) test --tap --tap-version 13 \(options)"] + paths)
            #expect(prove.status != 0, "\(prove.combined)")
            #expect(!prove.combined.contains("Parse errors") && !prove.combined.contains("YAMLish"), "\(prove.combined)")
            #expect(prove.stdout.components(separatedBy: "Failed 1/1 subtests").count == files.count + 1, "\(prove.combined)")
            // Each YAML block, read back: the blocked list as mappings with a call and a line.
            let check = """
                use TAP::Parser;
                my $p = TAP::Parser->new({ exec => [@ARGV] });
                while (my $r = $p->next) {
                    next unless $r->is_yaml;
                    my $d = $r->data;
                    print "yaml ", (defined $d->{message} ? "message " : ""), (defined($d->{replay} // $d->{rerun}) ? "repro " : "");
                    for my $b (@{ $d->{blocked} || [] }) { print "blocked=" . $b->{process} . ":" . $b->{call} . "@" . $b->{at} . " "; }
                    print "\n";
                }
                print "errors=", scalar($p->parse_errors), "\n";
                """
            for path in paths {
                let words = ["/usr/bin/perl", "-e", check, Ipcplay.binary, "test", "--tap", "--tap-version", "13"]
                    + options.split(separator: " ").map(String.init) + [path]
                let r = try Ipcplay.command("/usr/bin/env", words)
                #expect(r.stdout.contains("yaml message repro ") && r.stdout.contains("errors=0"), "\(path): \(r.combined)")
                if path.hasSuffix("deadlock_test.lua") {
                    #expect(r.stdout.contains("blocked=MainProcess:queue:get@\(path):3 ") && r.stdout.contains("blocked=Process-1:queue:get@\(path):2 "), "\(r.stdout)")
                }
                if path.hasSuffix("locks_test.lua") {
                    #expect(r.stdout.contains("blocked=MainProcess:lock:acquire@"), "\(r.stdout)")
                }
            }
        }
    }

    /// Issue 30, point 4: a plain run's failure offers a `rerun:` line and says that the
    /// kernel's schedule is not reproduced; under --sched the line is `replay:` and replays
    /// it; --explore-failures looks for a schedule that fails and gives its replay line.
    @Test func reproLinesSayWhetherTheyReproduce() throws {
        let dir = try Self.failingTests()
        defer { try? FileManager.default.removeItem(at: dir) }
        let error = dir.appendingPathComponent("error_test.lua").path
        let plain = try Ipcplay.run(["test", "--seed", "5", error])
        #expect(plain.stdout.contains("      rerun: ipcplay test --seed 5 \(error)  (the same seed and options; the kernel's schedule is not reproduced)\n"), "\(plain.stdout)")
        #expect(!plain.stdout.contains("replay:"), "\(plain.stdout)")
        let tap = try Ipcplay.run(["test", "--seed", "5", "--tap", error])
        #expect(tap.stdout.contains("  rerun: \"ipcplay test --seed 5 \(error)\"\n  note: \"the same seed and options; the kernel's schedule is not reproduced\"\n"), "\(tap.stdout)")
        let sched = try Ipcplay.run(["test", "--seed", "5", "--sched", "random", error])
        #expect(sched.stdout.contains("      replay: ipcplay test --seed 5 --sched random \(error)\n"), "\(sched.stdout)")
        let explored = try Ipcplay.run(["test", "--seed", "5", "--explore-failures", "20", error])
        #expect(explored.stdout.contains("under explore (20 schedules at most), a schedule failed: "), "\(explored.stdout)")
        let line = try #require(explored.stdout.split(separator: "\n").first { $0.contains("replay: ipcplay replay ") }, "\(explored.stdout)")
        let words = line.split(separator: " ").map(String.init).drop { $0 != "ipcplay" }.dropFirst()
        let again = try Ipcplay.run(Array(words))
        #expect(again.status == 1 && again.stderr.contains("no x: here"), "\(again.combined)")
    }

    /// Issue 30, point 3: `test --trace FOLDER` and `--timeline=FOLDER` write one file per
    /// test, named after it.
    @Test(.needsPython3) func traceAndTimelineWriteOneFilePerTest() throws {
        let dir = try Ipcplay.newTmpDirectory("ipcplay-rec")
        defer { try? FileManager.default.removeItem(at: dir) }
        let traces = dir.appendingPathComponent("traces").path
        let timelines = dir.appendingPathComponent("timelines").path
        let r = try Ipcplay.run(["test", "--timeout", "3", "--trace", traces, "--timeline=\(timelines)", "--filter", "_test", Self.fixtures])
        #expect(r.stdout.hasSuffix("1 passed, 3 failed\n"), "\(r.combined)")
        let base = Self.fixtures.split(separator: "/").joined(separator: "-")
        for name in ["pass_test", "assert_test", "hang_test", "child_error_test"] {
            let trace = "\(traces)/\(base)-\(name).json"
            let check = try Ipcplay.command("/usr/bin/env", ["python3", "-c", "import json,sys; d=json.load(open(sys.argv[1])); print(len(d) > 2)", trace])
            #expect(check.stdout == "True\n", "\(trace): \(check.combined)")
            let svg = (try? String(contentsOfFile: "\(timelines)/\(base)-\(name).svg", encoding: .utf8)) ?? ""
            #expect(svg.contains("<svg") && svg.contains("MainProcess"), "\(name).svg: \(svg.prefix(200))")
        }
    }
}
