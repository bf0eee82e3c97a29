import Foundation
import Testing

/// ipcplay's Unix sockets talk plain bytes: real peers on the other side.
@Suite("Unix sockets with real peers")
struct SocketPeerTests {
    func tempDir() throws -> URL { try Ipcplay.newTmpDirectory("ipcplay") }

    /// Starts `ipcplay args` in the background; returns it and its stdout file.
    func start(_ args: [String], in dir: URL) throws -> (Process, URL) {
        let out = dir.appendingPathComponent("bg-\(UUID().uuidString.prefix(6)).out")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Ipcplay.binary)
        p.arguments = args
        p.currentDirectoryURL = Ipcplay.packageRoot
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: out)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return (p, out)
    }

    /// Starts scripts/unix_server.lua for one client on DIR/msg.sock and waits for its
    /// socket file; returns the server, its stdout file and the socket's path.
    func startServerScript(in dir: URL) throws -> (Process, URL, String) {
        let sock = dir.appendingPathComponent("msg.sock").path
        let (server, out) = try start(["scripts/unix_server.lua", sock, "1"], in: dir)
        #expect(waitFor(sock))
        return (server, out, sock)
    }

    func waitFor(_ path: String, seconds: Double = 30) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if FileManager.default.fileExists(atPath: path) { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    func finish(_ p: Process, seconds: Double = 30) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.02) }
        if p.isRunning { p.terminate(); p.waitUntilExit(); return false }
        p.waitUntilExit()
        return true
    }

    func shell(_ command: String, stdin: String = "") throws -> (Int32, String) {
        let r = try Ipcplay.shell(command, stdin: stdin)
        return (r.status, r.output)
    }

    @Test(.needsSocat) func socatTalksToTheServerScript() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (server, out, sock) = try startServerScript(in: dir)
        let (status, reply) = try shell("printf 'hello from socat' | socat -t 2 - UNIX-CONNECT:\(sock)")
        #expect(status == 0, "\(reply)")
        #expect(reply.hasPrefix("copy! "), "\(reply)")
        #expect(finish(server))
        #expect(server.terminationStatus == 0)
        let printed = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        #expect(printed.contains("hello from socat"))
        #expect(!FileManager.default.fileExists(atPath: sock), "the server removed its socket file")
    }

    @Test(.needsPython3) func pythonClientTalksToTheServerScript() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (server, out, sock) = try startServerScript(in: dir)
        let client = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sys.argv[1])
            for msg in ["first", "second"]:
                s.send(msg.encode())
                print(s.recv(1024).decode())
            s.close()
            """
        let script = dir.appendingPathComponent("client.py")
        try client.write(to: script, atomically: true, encoding: .utf8)
        let (status, replies) = try shell("python3 \(script.path) \(sock)")
        #expect(status == 0, "\(replies)")
        let lines = replies.split(separator: "\n")
        #expect(lines.count == 2 && lines.allSatisfy { $0.hasPrefix("copy! ") }, "\(replies)")
        #expect(finish(server))
        let printed = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        #expect(printed.contains("first") && printed.contains("second"))
    }

    @Test(.needsPython3) func clientScriptTalksToAPythonServer() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sock = dir.appendingPathComponent("py.sock").path
        // The reference notes' server, in Python, serving one client.
        let server = """
            from socket import *
            from time import ctime
            import os, sys
            file = sys.argv[1]
            if os.path.exists(file):
                os.remove(file)
            socketfd = socket(AF_UNIX, SOCK_STREAM)
            socketfd.bind(file)
            socketfd.listen(5)
            connfd, addr = socketfd.accept()
            while True:
                data = connfd.recv(1024)
                if not data:
                    break
                print(data.decode(), flush=True)
                connfd.send('copy! {}'.format(ctime()).encode())
            connfd.close()
            os.remove(file)
            """
        let script = dir.appendingPathComponent("server.py")
        try server.write(to: script, atomically: true, encoding: .utf8)
        let py = Process()
        py.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        py.arguments = ["python3", script.path, sock]
        let pyOut = Pipe()
        py.standardOutput = pyOut
        try py.run()
        #expect(waitFor(sock))
        let r = try Ipcplay.run(["scripts/unix_client.lua", sock], stdin: "alpha\nbeta\n\nnot sent\n")
        #expect(r.status == 0, "\(r.combined)")
        let replies = r.stdout.components(separatedBy: ">>>").filter { !$0.isEmpty }
        #expect(replies.count == 2, "\(r.stdout)")
        #expect(replies.allSatisfy { $0.hasPrefix("copy! ") })
        py.waitUntilExit()
        let seen = String(decoding: pyOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(seen == "alpha\nbeta\n")
    }

    /// A script that binds sockets in the main process and in a child, then blocks.
    func blockingScript(_ dir: URL, then: String = "ipc.queue():get()") throws -> URL {
        let script = dir.appendingPathComponent("bind.lua")
        try """
            local dir = arg[1]
            local s1 = ipc.unix.listen(dir .. "/main.sock")
            local d1 = ipc.unix.dgram(dir .. "/main-dgram.sock")
            local ready = ipc.event()
            local child = ipc.spawn(function()
              local s2 = ipc.unix.listen(dir .. "/child.sock")
              ready:set()
              ipc.queue():get()
            end)
            ready:wait()
            print("ready")
            io.stdout:flush()
            \(then)
            """.write(to: script, atomically: true, encoding: .utf8)
        return script
    }

    func socketFiles(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".sock") }
    }

    @Test func ctrlCRemovesEverySocketFile() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = try blockingScript(dir)
        let (p, out) = try start([script.path, dir.path], in: dir)
        var printed = ""
        for _ in 0..<1500 where !printed.contains("ready") {
            Thread.sleep(forTimeInterval: 0.02)
            printed = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        }
        #expect(socketFiles(dir).count == 3)
        kill(p.processIdentifier, SIGINT)
        #expect(finish(p))
        #expect(p.terminationStatus == 130)
        #expect(socketFiles(dir).isEmpty, "left behind: \(socketFiles(dir))")
    }

    @Test func timeoutRemovesEverySocketFile() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = try blockingScript(dir)
        let r = try Ipcplay.run(["run", "--timeout", "2", script.path, dir.path])
        #expect(r.status == 124, "\(r.combined)")
        #expect(socketFiles(dir).isEmpty, "left behind: \(socketFiles(dir))")
    }

    @Test func errorInTheMainScriptRemovesEverySocketFile() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = try blockingScript(dir, then: "error('fails after binding')")
        let r = try Ipcplay.run([script.path, dir.path])
        #expect(r.status == 1, "\(r.combined)")
        #expect(socketFiles(dir).isEmpty, "left behind: \(socketFiles(dir))")
    }

    @Test func fanInScript() throws {
        let r = try Ipcplay.run(["run", "--time-scale", "0.1", "scripts/fan_in.lua"])
        #expect(r.status == 0, "\(r.combined)")
        let lines = r.stdout.split(separator: "\n")
        for i in 1...3 {
            #expect(lines.filter { $0.hasPrefix("[pipe \(i)] pipe \(i) message") }.count == 3)
            #expect(lines.contains("[pipe \(i)] closed"))
        }
        #expect(lines.filter { $0.hasPrefix("[queue] alarm") }.count == 2)
    }
}
