//! `streaming.NumberStreamer`, where its `.proto` rules and expectations
//! cannot reach: DEADLINE_EXCEEDED on a slow stream. The ranges themselves,
//! and INVALID_ARGUMENT for reversed or oversized ones, are declared in
//! `streaming.proto`.

use prost_reflect::Value;

use super::*;

pub(super) fn cases(ctx: &Context) -> Vec<Case> {
    let method = ctx.contract_method("streaming.NumberStreamer", "StreamNumbers");
    let slow = message(
        &method.input(),
        &[("start", Value::I64(0)), ("end", Value::I64(10)), ("interval_ms", Value::U32(60_000))],
    );
    let deadline_method = method.clone();
    vec![case(&method, "deadline-on-slow-stream", move |ctx| {
        deadline_on_slow_stream(ctx, deadline_method.clone(), slow.clone())
    })]
}
