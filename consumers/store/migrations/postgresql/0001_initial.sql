-- tradebus store, PostgreSQL: the first schema.
-- Decimal strings are kept exactly as received (TEXT). For arithmetic, each
-- table with decimals has a view <table>_numeric adding <column>_num NUMERIC
-- (NULL when the text is not a plain number), computed on read so that
-- writes stay lean.
-- Timestamps are timestamptz (UTC). stored_at: when the row was last written.
-- Current-state tables (ideas, orders, positions) are updated in place: fillfactor 80
-- leaves room on each page for HOT updates.

CREATE FUNCTION tradebus_decimal(value text) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN value ~ '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]{1,4})?$' THEN value::numeric END $$;

CREATE TABLE idea_versions (
    idea_id            text NOT NULL,
    last_update_text   text NOT NULL,
    last_update        timestamptz NOT NULL,
    id                 text,
    document_id        text,
    prefix             text,
    asset_class        text,
    instrument         text,
    timeframe          text,
    side               text,
    open_order_type    text,
    price              double precision,
    take_profit        double precision,
    stop_loss          double precision,
    confidence         double precision,
    estimated_pl       double precision,
    description        text,
    creation_time      timestamptz,
    expiration_time    timestamptz,
    unknown_fields     jsonb NOT NULL,
    upstream_json      text NOT NULL,
    ingested_at        timestamptz NOT NULL,
    producer_instance  text NOT NULL,
    replay             boolean NOT NULL,
    stored_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (idea_id, last_update_text)
);

-- The current version of each idea: the highest last_update.
CREATE TABLE ideas (LIKE idea_versions INCLUDING DEFAULTS, PRIMARY KEY (idea_id)) WITH (fillfactor = 80);

CREATE TABLE order_events (
    order_id               text NOT NULL,
    command_seq            bigint NOT NULL,
    order_status           text NOT NULL,
    filled_quantity        text NOT NULL,
    received_at            timestamptz NOT NULL,
    intent_id              text NOT NULL,
    external_order_id      text,
    account_id             text NOT NULL,
    broker                 text NOT NULL,
    symbol                 text NOT NULL,
    order_state            text NOT NULL,
    order_type             text NOT NULL,
    order_side             text NOT NULL,
    limit_price            text,
    stop_price             text,
    average_price          text,
    order_venue            text NOT NULL,
    quantity               text NOT NULL,
    time_in_force          text NOT NULL,
    organization_id        text NOT NULL,
    client_reference_id    text,
    broker_sent_at         timestamptz,
    instrument_kind        text,
    instrument_symbol      text,
    instrument_exchange    text,
    instrument_attributes  text,
    upstream_protobuf      bytea NOT NULL,
    ingested_at            timestamptz NOT NULL,
    producer_instance      text NOT NULL,
    replay                 boolean NOT NULL,
    stored_at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (order_id, command_seq, order_status, filled_quantity, received_at)
);

-- The current state of each order: the newest by received_at, then command_seq.
CREATE TABLE orders (LIKE order_events INCLUDING DEFAULTS, PRIMARY KEY (order_id))
    WITH (fillfactor = 80);

CREATE TABLE positions (
    account_id             text NOT NULL,
    symbol                 text NOT NULL,
    received_at            timestamptz NOT NULL,
    quantity               text NOT NULL,
    average_cost           text NOT NULL,
    organization_id        text NOT NULL,
    broker                 text NOT NULL,
    broker_sent_at         timestamptz,
    instrument_kind        text,
    instrument_symbol      text,
    instrument_exchange    text,
    instrument_attributes  text,
    realized_pnl           text,
    daily_pnl              text,
    value_bought           text,
    value_sold             text,
    upstream_protobuf      bytea NOT NULL,
    ingested_at            timestamptz NOT NULL,
    producer_instance      text NOT NULL,
    replay                 boolean NOT NULL,
    stored_at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (account_id, symbol)
) WITH (fillfactor = 80);

-- trade_key: exec|<exec_id>, or cumulative|<order_id>|<cumulative_quantity> when there is no exec id.
CREATE TABLE trades (
    trade_key              text PRIMARY KEY,
    exec_id                text,
    account_id             text NOT NULL,
    order_id               text NOT NULL,
    client_order_id        text NOT NULL,
    symbol                 text NOT NULL,
    side                   text NOT NULL,
    quantity               text NOT NULL,
    price                  text NOT NULL,
    received_at            timestamptz NOT NULL,
    organization_id        text NOT NULL,
    cumulative_quantity    text,
    order_quantity         text,
    leaves_quantity        text,
    broker_sent_at         timestamptz,
    instrument_kind        text,
    instrument_symbol      text,
    instrument_exchange    text,
    instrument_attributes  text,
    upstream_protobuf      bytea NOT NULL,
    ingested_at            timestamptz NOT NULL,
    producer_instance      text NOT NULL,
    replay                 boolean NOT NULL,
    stored_at              timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE intent_actions (
    intent_id              text NOT NULL,
    seq                    bigint NOT NULL,
    organization_id        text NOT NULL,
    account_id             text NOT NULL,
    action_type            text NOT NULL,
    symbol                 text NOT NULL,
    order_side             text NOT NULL,
    order_type             text NOT NULL,
    limit_price            text,
    stop_price             text,
    order_venue            text NOT NULL,
    time_in_force          text,
    quantity               text NOT NULL,
    client_reference_id    text,
    principal_type         text NOT NULL,
    received_at            timestamptz NOT NULL,
    created_at             timestamptz NOT NULL,
    upstream_protobuf      bytea NOT NULL,
    ingested_at            timestamptz NOT NULL,
    producer_instance      text NOT NULL,
    replay                 boolean NOT NULL,
    stored_at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (intent_id, seq)
);

CREATE TABLE alerts (
    alert_id      text PRIMARY KEY,
    rule          text NOT NULL,
    alert_key     text NOT NULL,
    severity      text NOT NULL,
    title         text NOT NULL,
    message       text NOT NULL,
    fired_at      timestamptz NOT NULL,
    source_topic  text,
    source_key    text,
    event_time    timestamptz,
    deliveries    jsonb NOT NULL,
    details       jsonb NOT NULL,
    stored_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX alerts_fired_at ON alerts (fired_at);

-- Numeric twins of the decimal strings, computed on read. (SELECT * is expanded
-- when a view is created: a migration that adds columns recreates the view.)
CREATE VIEW order_events_numeric AS SELECT *,
    tradebus_decimal(limit_price) AS limit_price_num, tradebus_decimal(stop_price) AS stop_price_num,
    tradebus_decimal(average_price) AS average_price_num, tradebus_decimal(quantity) AS quantity_num,
    tradebus_decimal(filled_quantity) AS filled_quantity_num
    FROM order_events;
CREATE VIEW orders_numeric AS SELECT *,
    tradebus_decimal(limit_price) AS limit_price_num, tradebus_decimal(stop_price) AS stop_price_num,
    tradebus_decimal(average_price) AS average_price_num, tradebus_decimal(quantity) AS quantity_num,
    tradebus_decimal(filled_quantity) AS filled_quantity_num
    FROM orders;
CREATE VIEW positions_numeric AS SELECT *,
    tradebus_decimal(quantity) AS quantity_num, tradebus_decimal(average_cost) AS average_cost_num,
    tradebus_decimal(realized_pnl) AS realized_pnl_num, tradebus_decimal(daily_pnl) AS daily_pnl_num,
    tradebus_decimal(value_bought) AS value_bought_num, tradebus_decimal(value_sold) AS value_sold_num
    FROM positions;
CREATE VIEW trades_numeric AS SELECT *,
    tradebus_decimal(quantity) AS quantity_num, tradebus_decimal(price) AS price_num,
    tradebus_decimal(cumulative_quantity) AS cumulative_quantity_num,
    tradebus_decimal(order_quantity) AS order_quantity_num, tradebus_decimal(leaves_quantity) AS leaves_quantity_num
    FROM trades;
CREATE VIEW intent_actions_numeric AS SELECT *,
    tradebus_decimal(limit_price) AS limit_price_num, tradebus_decimal(stop_price) AS stop_price_num,
    tradebus_decimal(quantity) AS quantity_num
    FROM intent_actions;
