-- wrk script: submit the public ticket form again and again.
-- The CSRF token is bound to the session, so one cookie + token pair (fetched by run.py
-- beforehand, as a browser would) serves every request.
local path = os.getenv("BENCH_PATH")
local cookie = os.getenv("BENCH_COOKIE")
local token = os.getenv("BENCH_CSRF")
local counter = 0

local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Cookie"] = cookie,
}

request = function()
  counter = counter + 1
  -- A new customer each time, as on a real help center: the contact and its
  -- identity are created with the ticket.
  local body = "name=Bench+Customer&email=bench" .. counter .. "-" .. math.random(1000000000)
    .. "%40example.com"
    .. "&subject=Benchmark+ticket+" .. counter
    .. "&description=My+payment+page+does+not+load+after+I+sign+in.+Please+help."
    .. "&csrf_token=" .. token
    -- Each form a browser shows carries its own submission id (re-sending one is a no-op).
    .. "&submission=s" .. counter .. "-" .. math.random(1000000000)
  return wrk.format("POST", path, headers, body)
end

init = function(args)
  -- Each wrk thread has its own Lua state: seed each differently.
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end
