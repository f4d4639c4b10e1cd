//! `streaming.NumberStreamer`: the exact inclusive range; INVALID_ARGUMENT for
//! reversed or oversized ranges; DEADLINE_EXCEEDED on a slow stream.

use proptest::prelude::*;
use prost_reflect::Value;

use super::*;

const MAX_VALUES: i64 = 1_000_000;

pub(super) fn cases(ctx: &Context) -> Vec<Case> {
    let method = ctx.contract_method("streaming.NumberStreamer", "StreamNumbers");
    let slow = message(
        &method.input(),
        &[("start", Value::I64(0)), ("end", Value::I64(10)), ("interval_ms", Value::U32(60_000))],
    );
    let deadline_method = method.clone();
    vec![
        ranges(&method, "inclusive-range", || {
            // Start anywhere, edges included, with up to 200 values.
            (prop_oneof![Just(i64::MIN), Just(-1i64), Just(0i64), any::<i64>()], 1i64..=200)
                .prop_map(|(start, len)| {
                    let start = start.min(i64::MAX - (len - 1));
                    (start, start + (len - 1))
                })
                .boxed()
        }),
        ranges(&method, "reversed-range", || {
            (any::<i64>(), any::<i64>())
                .prop_filter_map("start > end", |(a, b)| (a != b).then(|| (a.max(b), a.min(b))))
                .boxed()
        }),
        ranges(&method, "oversized-range", || {
            (any::<i64>(), MAX_VALUES..=i64::MAX)
                .prop_map(|(start, extra)| {
                    let start = start.min(i64::MAX - extra);
                    (start, start + extra)
                })
                .boxed()
        }),
        case(&method, "deadline-on-slow-stream", move |ctx| {
            deadline_on_slow_stream(ctx, deadline_method.clone(), slow.clone())
        }),
    ]
}

fn ranges(
    method: &MethodDescriptor,
    property: &'static str,
    strategy: fn() -> BoxedStrategy<(i64, i64)>,
) -> Case {
    property_case(
        method,
        property,
        move |_, input| {
            strategy().prop_map(move |(start, end)| {
                vec![message(&input, &[("start", Value::I64(start)), ("end", Value::I64(end))])]
            })
        },
        |ctx, method, requests| async move {
            let request = &requests[0];
            let (Value::I64(start), Value::I64(end)) = (get(request, "start"), get(request, "end")) else {
                unreachable!("int64 fields")
            };
            let stream = ctx.client().server_streaming(&method, request, &options(&ctx)).await;
            let (messages, end_of_call) = match stream {
                Ok(stream) => stream.collect().await,
                Err(err) => (Vec::new(), Err(err)),
            };
            let count = i128::from(end) - i128::from(start) + 1;
            if start > end || count > i128::from(MAX_VALUES) {
                expect_eq("values before the error", 0, messages.len())?;
                return expect_code(tonic::Code::InvalidArgument, end_of_call.map(|_| ()));
            }
            end_of_call.map_err(call_failed)?;
            let values: Vec<Value> = messages.iter().map(|m| get(m, "value")).collect();
            let expected: Vec<Value> = (start..=end).map(Value::I64).collect();
            expect_eq("values", expected, values)
        },
    )
}
