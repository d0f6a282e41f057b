-- wrk script: Telegram updates posted at a social account's webhook, each with its own
-- update_id (thread number and a counter), from 500 customers' chats, with the secret token.
local path = os.getenv("BENCH_PATH")
local secret = os.getenv("BENCH_SECRET")
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

request = function()
  counter = counter + 1
  local update_id = tid * 100000000 + counter
  local chat = 7000000 + (update_id % 500)
  local body = '{"update_id":' .. update_id .. ',"message":{"message_id":' .. update_id
    .. ',"date":1441645532,"chat":{"id":' .. chat .. ',"type":"private","first_name":"Bench"},'
    .. '"from":{"id":' .. chat .. ',"first_name":"Bench","last_name":"Customer"},'
    .. '"text":"My payout did not arrive. Order ' .. update_id .. '"}}'
  return wrk.format("POST", path, {["Content-Type"] = "application/json",
                                   ["X-Telegram-Bot-Api-Secret-Token"] = secret}, body)
end
