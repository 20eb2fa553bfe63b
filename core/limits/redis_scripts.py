"""The Lua scripts behind the Redis limiters (core.limits.redis_backend): each check or
slot operation is one script call, timed by Redis `TIME`, atomic on the server."""

from __future__ import annotations

# KEYS: one sorted set per budget. ARGV: cost, request token, then limit and period
# (ms) per key. Returns {allowed, binding key index (1-based), limit, remaining,
# reset_after ms, retry_after ms}.
CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local token = ARGV[2]
local limits, periods, counts = {}, {}, {}
local deny, deny_retry = 0, -1
for i = 1, #KEYS do
  local limit, period = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - period)
  local count = redis.call('ZCARD', KEYS[i])
  limits[i], periods[i], counts[i] = limit, period, count
  if count + cost > limit then
    -- Fits once the (count + cost - limit)-th oldest entry expires (never if cost > limit).
    local retry = period
    local k = count + cost - limit - 1
    if k < count then
      retry = tonumber(redis.call('ZRANGE', KEYS[i], k, k, 'WITHSCORES')[2]) + period - now
    end
    if retry > deny_retry then deny, deny_retry = i, retry end
  end
end
if deny > 0 then
  local reset = 0
  if counts[deny] > 0 then
    local newest = redis.call('ZRANGE', KEYS[deny], -1, -1, 'WITHSCORES')
    reset = tonumber(newest[2]) + periods[deny] - now
  end
  return {0, deny, limits[deny], 0, reset, deny_retry}
end
local best, best_remaining = 0, 0
for i = 1, #KEYS do
  local j = 1
  while j <= cost do
    local args = {}
    local last = math.min(cost, j + 999)
    for m = j, last do
      args[#args + 1] = now
      args[#args + 1] = token .. ':' .. m
    end
    redis.call('ZADD', KEYS[i], unpack(args))
    j = last + 1
  end
  redis.call('PEXPIRE', KEYS[i], periods[i])
  local remaining = limits[i] - counts[i] - cost
  if best == 0 or remaining < best_remaining then best, best_remaining = i, remaining end
end
return {1, best, limits[best], best_remaining, periods[best], 0}
"""

_SLOT_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key, slot, ttl = KEYS[1], ARGV[1], tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
"""
_SLOT_KEEP = """
redis.call('ZADD', key, now + ttl, slot)
if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
"""
# KEYS: the slot set. ARGV: slot_id, ttl ms, limit. Returns 1 when acquired.
ACQUIRE = (
    _SLOT_NOW
    + """
if not redis.call('ZSCORE', key, slot) and redis.call('ZCARD', key) >= tonumber(ARGV[3]) then
  return 0
end"""
    + _SLOT_KEEP
    + "return 1\n"
)
# KEYS: the slot set. ARGV: slot_id, ttl ms. Records the slot even if it was lost.
REFRESH = _SLOT_NOW + _SLOT_KEEP + "return 1\n"
