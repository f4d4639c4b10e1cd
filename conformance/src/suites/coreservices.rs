//! `coreservices.CoreServices`: Ping echoes; StreamNumbers emits exactly
//! `count` values; UploadNumbers summarises any stream; Chat echoes in
//! lockstep with `seq` and `sender`.

use proptest::prelude::*;
use prost_reflect::Value;

use super::*;

const SERVICE: &str = "coreservices.CoreServices";

pub(super) fn cases(ctx: &Context) -> Vec<Case> {
    let ping = ctx.contract_method(SERVICE, "Ping");
    let stream_numbers = ctx.contract_method(SERVICE, "StreamNumbers");
    let upload = ctx.contract_method(SERVICE, "UploadNumbers");
    let chat = ctx.contract_method(SERVICE, "Chat");
    let slow =
        message(&stream_numbers.input(), &[("count", Value::U32(10)), ("interval_ms", Value::U32(60_000))]);
    let deadline_method = stream_numbers.clone();
    vec![
        ping_echoes(&ping),
        exact_count(&stream_numbers),
        case(&stream_numbers, "deadline-on-slow-stream", move |ctx| {
            deadline_on_slow_stream(ctx, deadline_method.clone(), slow.clone())
        }),
        upload_summary(&upload),
        chat_lockstep(&chat),
        chat_all_at_once(&chat),
    ]
}

/// Counts as servers get them wrong: mostly small, sometimes on a power of
/// two or next to one.
fn counts(max: usize) -> impl Strategy<Value = u32> {
    let boundaries: Vec<u32> =
        harness::arbitrary::scalars::boundaries(max).into_iter().map(|n| n as u32).collect();
    prop_oneof![4 => 0u32..=32, 1 => proptest::sample::select(boundaries)]
}

fn ping_echoes(method: &MethodDescriptor) -> Case {
    property_case(
        method,
        "echoes",
        |generator, input| generator.message(&input).prop_map(|m| vec![m]),
        |ctx, method, requests| async move {
            let reply =
                ctx.client().unary(&method, &requests[0], &options(&ctx)).await.map_err(call_failed)?;
            expect_eq("message", get(&requests[0], "message"), get(&reply.message, "message"))
        },
    )
}

fn exact_count(method: &MethodDescriptor) -> Case {
    property_case(
        method,
        "exact-count",
        |_, input| counts(2048).prop_map(move |count| vec![message(&input, &[("count", Value::U32(count))])]),
        |ctx, method, requests| async move {
            let Value::U32(count) = get(&requests[0], "count") else { unreachable!("uint32 field") };
            let stream = ctx
                .client()
                .server_streaming(&method, &requests[0], &options(&ctx))
                .await
                .map_err(call_failed)?;
            let (messages, end) = stream.collect().await;
            end.map_err(call_failed)?;
            let values: Vec<Value> = messages.iter().map(|m| get(m, "value")).collect();
            expect_eq("values", (0..i64::from(count)).map(Value::I64).collect(), values)
        },
    )
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

/// The whole stream sent before any reply is read: replies must still come
/// in request order. (In lockstep a server has no chance to reorder.)
fn chat_all_at_once(method: &MethodDescriptor) -> Case {
    property_case(
        method,
        "in-order-when-sent-at-once",
        |generator, input| generator.requests(&input),
        |ctx, method, requests| async move {
            let mut call = ctx.client().bidi(&method, &options(&ctx));
            for request in &requests {
                call.send(request).map_err(call_failed)?;
            }
            call.close_send();
            let mut replies = Vec::new();
            while let Some(reply) = call.message().await.map_err(call_failed)? {
                replies.push(reply);
            }
            let texts =
                |messages: &[DynamicMessage]| messages.iter().map(|m| get(m, "text")).collect::<Vec<_>>();
            expect_eq("reply texts", texts(&requests), texts(&replies))?;
            let seqs: Vec<Value> = replies.iter().map(|m| get(m, "seq")).collect();
            expect_eq("reply seqs", (0..requests.len() as u64).map(Value::U64).collect(), seqs)
        },
    )
}
