//! `coreservices.CoreServices`, where its `.proto` expectations cannot
//! reach: StreamNumbers ends with DEADLINE_EXCEEDED when slow; UploadNumbers
//! fails as soon as a prefix sum overflows (CEL has no fold to compute
//! running sums with); Chat answers in lockstep. The echoes, counts and
//! summaries of small streams are expectations in `service.proto`.

use proptest::prelude::*;
use prost_reflect::Value;

use super::*;

const SERVICE: &str = "coreservices.CoreServices";

pub(super) fn cases(ctx: &Context) -> Vec<Case> {
    let stream_numbers = ctx.contract_method(SERVICE, "StreamNumbers");
    let upload = ctx.contract_method(SERVICE, "UploadNumbers");
    let chat = ctx.contract_method(SERVICE, "Chat");
    let slow =
        message(&stream_numbers.input(), &[("count", Value::U32(10)), ("interval_ms", Value::U32(60_000))]);
    let deadline_method = stream_numbers.clone();
    vec![
        case(&stream_numbers, "deadline-on-slow-stream", move |ctx| {
            deadline_on_slow_stream(ctx, deadline_method.clone(), slow.clone())
        }),
        upload_summary(&upload),
        chat_lockstep(&chat),
    ]
}

/// Numbers that often overflow: extremes mixed with small values.
fn number() -> impl Strategy<Value = i64> {
    prop_oneof![Just(i64::MAX), Just(i64::MIN), Just(0i64), -1000i64..1000, any::<i64>()]
}

fn upload_summary(method: &MethodDescriptor) -> Case {
    property_case(
        method,
        "summary",
        |generator, input| {
            generator.stream_of(number().boxed()).prop_map(move |values| {
                values.into_iter().map(|v| message(&input, &[("value", Value::I64(v))])).collect()
            })
        },
        |ctx, method, requests| async move {
            let values: Vec<i64> =
                requests.iter().map(|m| if let Value::I64(v) = get(m, "value") { v } else { 0 }).collect();
            let outcome = ctx.client().client_streaming(&method, &requests, &options(&ctx)).await;
            // The contract fails the call as soon as a running sum leaves int64.
            let mut sum: i128 = 0;
            let mut overflowed = false;
            for &value in &values {
                sum += i128::from(value);
                overflowed |= i64::try_from(sum).is_err();
            }
            if overflowed {
                return expect_code(tonic::Code::OutOfRange, outcome.map(|_| ()));
            }
            let reply = outcome.map_err(call_failed)?.message;
            let expected = [
                ("count", Value::U64(values.len() as u64)),
                ("sum", Value::I64(sum as i64)),
                ("min", Value::I64(values.iter().copied().min().unwrap_or(0))),
                ("max", Value::I64(values.iter().copied().max().unwrap_or(0))),
            ];
            for (field, value) in expected {
                expect_eq(field, value, get(&reply, field))?;
            }
            Ok(())
        },
    )
}

fn chat_lockstep(method: &MethodDescriptor) -> Case {
    property_case(
        method,
        "lockstep-echo",
        |generator, input| generator.requests(&input),
        |ctx, method, requests| async move {
            lockstep(&ctx, &method, &requests, |index, request, reply| {
                let at = |field: &str| format!("reply #{index} {field}");
                expect_eq(&at("text"), get(request, "text"), get(reply, "text"))?;
                expect_eq(&at("seq"), Value::U64(index as u64), get(reply, "seq"))?;
                expect_eq(&at("sender"), Value::String("server".into()), get(reply, "sender"))
            })
            .await
        },
    )
}
