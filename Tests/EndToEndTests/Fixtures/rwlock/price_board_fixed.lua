-- The fixed twin of price_board.lua: the writers take the rwlock to write.
assert(loadfile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/price_board.lua"))("fixed")
