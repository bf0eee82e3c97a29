-- The fixed twin of price_board.lua: the writers take the rwlock to write.
arg[1] = "fixed"
dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/price_board.lua")
