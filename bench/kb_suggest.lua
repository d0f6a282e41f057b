-- wrk script: the ticket form's suggestion endpoint, with the queries kb_search.py passes
-- (URL-encoded, separated by newlines in BENCH_QUERIES), one after another.
local path = os.getenv("BENCH_PATH")
local queries = {}
for line in string.gmatch(os.getenv("BENCH_QUERIES") or "", "[^\n]+") do
  queries[#queries + 1] = line
end
local counter = 0

request = function()
  counter = counter + 1
  local q = queries[(counter % #queries) + 1]
  return wrk.format("GET", path .. "&q=" .. q)
end
