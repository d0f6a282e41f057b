-- wrk script: submit the public ticket form again and again.
-- The CSRF token is bound to the session, so one cookie + token pair (fetched by run.py
-- beforehand, as a browser would) serves every request.
local path = os.getenv("BENCH_PATH")
local cookie = os.getenv("BENCH_COOKIE")
local token = os.getenv("BENCH_CSRF")
-- Optional (bench/hostile.py): the form's signed "shown at" stamp, and a client address
-- per request in X-Forwarded-For (customers behind a trusted proxy, each with their own).
local shown_at = os.getenv("BENCH_SHOWN_AT")
local forwarded = os.getenv("BENCH_FORWARDED")
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
  if shown_at then
    body = body .. "&shown_at=" .. shown_at
  end
  if forwarded then
    headers["X-Forwarded-For"] = "10." .. math.random(0, 255) .. "." .. math.random(0, 255)
      .. "." .. math.random(1, 254)
  end
  return wrk.format("POST", path, headers, body)
end

init = function(args)
  -- Each wrk thread has its own Lua state: seed each differently.
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end
