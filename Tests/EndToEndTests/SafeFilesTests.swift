import Foundation
import Testing

/// The files a run touches: socket files get the user's umask (or an explicit `mode`);
/// clearing a stale socket never follows a symlink nor removes anything but a socket;
/// shared memory has no name in any file system.
@Suite("Safe files")
struct SafeFilesTests {
    func tempDir() throws -> URL { try Ipcplay.newTmpDirectory("ipcplay-files") }

    static let modes = """
        local dir = arg[1]
        local function mode(p) return io.popen("stat -c %a " .. p):read("l") end
        local srv = ipc.unix.listen(dir .. "/server.sock")
        local d = ipc.unix.dgram(dir .. "/dgram.sock")
        local private = ipc.unix.listen(dir .. "/private.sock", 5, {mode = tonumber("660", 8)})
        print(mode(dir .. "/server.sock"), mode(dir .. "/dgram.sock"), mode(dir .. "/private.sock"))
        """

    @Test(arguments: [("022", "755"), ("077", "700"), ("007", "770")])
    func socketFilesFollowTheUmask(umask: String, expected: String) throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let s = try Ipcplay.writeScript(Self.modes)
        defer { Ipcplay.removeScript(s) }
        let r = try Ipcplay.shell("umask \(umask) && '\(Ipcplay.binary)' '\(s.path)' '\(dir.path)'")
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output == "\(expected)\t\(expected)\t660\n", "\(r.output)")
        // The run removed the files it made.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test(.needsPython3) func staleSocketsOnlyAndNeverThroughALink() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = dir.path
        // A stale socket (bound, then closed by a process that is gone), a link to it,
        // a link to a regular file, a FIFO and a directory.
        let made = try Ipcplay.shell("""
            python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' \(d)/stale.sock &&
            ln -s \(d)/stale.sock \(d)/link-to-socket.sock && echo keep > \(d)/file && ln -s \(d)/file \(d)/link-to-file.sock &&
            mkfifo \(d)/fifo.sock && mkdir \(d)/dir.sock
            """)
        try #require(made.status == 0, "\(made.output)")
        let s = try Ipcplay.writeScript("""
            local dir = arg[1]
            for _, name in ipairs{"link-to-socket.sock", "link-to-file.sock", "fifo.sock", "dir.sock"} do
              for _, make in ipairs{ipc.unix.listen, ipc.unix.dgram} do
                local ok, err = pcall(make, dir .. "/" .. name)
                print(name, ok, err)
              end
            end
            -- the stale socket itself is replaced, and the new one is live
            local srv = ipc.unix.listen(dir .. "/stale.sock")
            local c = ipc.unix.connect(dir .. "/stale.sock", 5)
            c:send("x")
            print("stale replaced", srv:accept(5):recv(1))
            """)
        defer { Ipcplay.removeScript(s) }
        let r = try Ipcplay.shell("'\(Ipcplay.binary)' '\(s.path)' '\(d)'")
        #expect(r.status == 0, "\(r.output)")
        let lines = r.output.split(separator: "\n")
        #expect(lines.count == 9, "\(r.output)")
        for line in lines.prefix(8) {
            #expect(line.contains("\tfalse\t") && line.contains("exists and is not a socket; not touching it"), "\(line)")
        }
        #expect(lines.last == "stale replaced\tx", "\(r.output)")
        // Nothing but the stale socket was touched, and the run removed the socket it made.
        var isDir: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: "\(d)/dir.sock", isDirectory: &isDir) && isDir.boolValue)
        #expect(try String(contentsOfFile: "\(d)/file", encoding: .utf8) == "keep\n")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "\(d)/link-to-socket.sock")) == "\(d)/stale.sock")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "\(d)/link-to-file.sock")) == "\(d)/file")
        #expect(FileManager.default.fileExists(atPath: "\(d)/fifo.sock"))
        #expect(!FileManager.default.fileExists(atPath: "\(d)/stale.sock"))
    }

    @Test func sharedMemoryHasNoName() throws {
        let before = try FileManager.default.contentsOfDirectory(atPath: "/dev/shm").sorted()
        let s = try Ipcplay.writeScript("""
            local keep = {ipc.queue(), ipc.joinable_queue(), ipc.value("i"), ipc.array("d", 1000), ipc.lock(),
              ipc.rlock(), ipc.semaphore(), ipc.bounded_semaphore(), ipc.event(), ipc.condition(), ipc.barrier(2)}
            local a, b = ipc.pipe()
            local s1, s2 = ipc.unix.socketpair()
            s1:send_handle(a)                       -- a pipe that travels: its inbox is a memfd
            keep[#keep + 1] = s2:recv_handle()
            local shared = 0
            for line in io.lines("/proc/self/maps") do
              local perms, path = line:match("^%S+%s+(%S+)%s+%S+%s+%S+%s+%S+%s*(.-)%s*$")
              if perms:sub(4, 4) == "s" then
                shared = shared + 1
                print(path)
              end
            end
            assert(shared >= 12, "only " .. shared .. " shared mappings")
            """)
        defer { Ipcplay.removeScript(s) }
        let r = try Ipcplay.shell("'\(Ipcplay.binary)' '\(s.path)'")
        #expect(r.status == 0, "\(r.output)")
        for path in r.output.split(separator: "\n") {
            // MAP_SHARED|MAP_ANONYMOUS shows as /dev/zero, a memfd as /memfd:; neither
            // exists in a file system another user could open.
            #expect(path == "/dev/zero (deleted)" || (path.hasPrefix("/memfd:") && path.hasSuffix("(deleted)")), "\(path)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: "/dev/shm").sorted() == before)
    }
}
