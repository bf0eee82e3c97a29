local t = {a = 1}
ipc.test.eq(t, {a = 2}, "the table")
