-- grain: one row per token with a USD price feed (chain_id, token)
-- The price feed a venue reads for a token: the registry's USD feed of the token itself, else,
-- for an aToken or a debt token, the one of its underlying (Compound prices aWETH with the WETH
-- feed, the perps and options venues aUSDC with the USDC one). With several feeds for a token,
-- the lowest address, so each token has one. A feed quoted in another token (STETH / ETH) is
-- no venue's oracle answer: int_oracle_prices composes it into a USD value.
with price_feeds as (
    select chain_id, base_token as token, min(feed) as feed
    from ref_feeds
    where feed_kind = 'price' and base_token is not null and quote = 'USD'
    group by all
)
select t.chain_id, t.token, coalesce(own.feed, under.feed) as feed
from int_tokens as t
left join price_feeds as own on own.chain_id = t.chain_id and own.token = t.token
left join price_feeds as under
    on under.chain_id = t.chain_id and under.token = t.underlying
    and t.token_kind in ('atoken', 'debt_token')
where coalesce(own.feed, under.feed) is not null
