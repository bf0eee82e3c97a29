-- c:send_bytes(s, offset, size) sends a slice, with Python's bounds rules (offset and
-- size count bytes from 0, as in multiprocessing.Connection.send_bytes).
local ipc = require("ipc")
local t = ipc.test

local a, b = ipc.pipe()
a:send_bytes("abcdef", 2)
t.eq(b:recv_bytes(5), "cdef")
a:send_bytes("abcdef", 2, 3)
t.eq(b:recv_bytes(5), "cde")
a:send_bytes("abcdef", 0, 6)
t.eq(b:recv_bytes(5), "abcdef")
a:send_bytes("abcdef", 6)
t.eq(b:recv_bytes(5), "")
a:send_bytes("abcdef", nil, 2)
t.eq(b:recv_bytes(5), "ab")
a:send_bytes("abcdef", 1, 0)
t.eq(b:recv_bytes(5), "")

-- A slice of a large message (through the lane) and from another process.
local big = string.rep("0123456789", 60000)
local p = ipc.spawn(function() a:send_bytes(big, 5, 500000) end)
t.eq(b:recv_bytes(30), big:sub(6, 500005))
p:join()

t.raises(function() a:send_bytes("abc", -1) end, "^connection:send_bytes: offset is negative")
t.raises(function() a:send_bytes("abc", 4) end, "^connection:send_bytes: offset 4 is past the end of the 3 bytes")
t.raises(function() a:send_bytes("abc", 1, -1) end, "^connection:send_bytes: size is negative")
t.raises(function() a:send_bytes("abc", 1, 3) end, "^connection:send_bytes: offset %+ size %(1 %+ 3%) is past the end")
t.raises(function() a:send_bytes("abc", "x") end, "^connection:send_bytes: offset must be an integer")
t.raises(function() a:send_bytes("abc", 1.5) end, "^connection:send_bytes: offset must be an integer")
-- CPython's _TestConnection.test_sendbytes, as it is.
local msg = "abcdefghijklmnopqrstuvwxyz"
a:send_bytes(msg) t.eq(b:recv_bytes(5), msg)
a:send_bytes(msg, 5) t.eq(b:recv_bytes(5), msg:sub(6))
a:send_bytes(msg, 7, 8) t.eq(b:recv_bytes(5), msg:sub(8, 15))
a:send_bytes(msg, 26) t.eq(b:recv_bytes(5), "")
a:send_bytes(msg, 26, 0) t.eq(b:recv_bytes(5), "")
t.raises(function() a:send_bytes(msg, 27) end, "^[^\n]*connection:send_bytes: offset 27 is past the end")
t.raises(function() a:send_bytes(msg, 22, 5) end, "connection:send_bytes: offset %+ size")
t.raises(function() a:send_bytes(msg, 26, 1) end, "connection:send_bytes: offset %+ size")
t.raises(function() a:send_bytes(msg, -1) end, "connection:send_bytes: offset is negative")
t.raises(function() a:send_bytes(msg, 4, -1) end, "connection:send_bytes: size is negative")

-- Nothing was sent by the calls that raised.
t.eq(b:poll(), false)
print("send_bytes slices ok")
