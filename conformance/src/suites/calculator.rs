//! `calculator.Calculator`: `Cube(n) = n³`, OUT_OF_RANGE when |n| > 2097151.

use proptest::prelude::*;
use prost_reflect::Value;

use super::*;

const MAX: i64 = 2_097_151;

pub(super) fn cases(ctx: &Context) -> Vec<Case> {
    let cube = ctx.contract_method("calculator.Calculator", "Cube");
    vec![
        cube_case(&cube, "cube-in-range", || (-MAX..=MAX).prop_map(Value::I64).boxed(), true),
        cube_case(
            &cube,
            "out-of-range",
            || prop_oneof![(i64::MIN..-MAX), (MAX + 1..=i64::MAX)].prop_map(Value::I64).boxed(),
            false,
        ),
    ]
}

fn cube_case(
    cube: &MethodDescriptor,
    property: &'static str,
    numbers: fn() -> BoxedStrategy<Value>,
    in_range: bool,
) -> Case {
    property_case(
        cube,
        property,
        move |generator, input| {
            generator
                .clone()
                .override_field("calculator.CubeRequest.number", numbers)
                .message(&input)
                .prop_map(|m| vec![m])
        },
        move |ctx, method, requests| async move {
            let request = &requests[0];
            let Value::I64(n) = get(request, "number") else { unreachable!("int64 field") };
            let outcome = ctx.client().unary(&method, request, &options(&ctx)).await;
            if in_range {
                let reply = outcome.map_err(call_failed)?;
                expect_eq("result", Value::I64(n * n * n), get(&reply.message, "result"))
            } else {
                expect_code(tonic::Code::OutOfRange, outcome.map(|_| ()))
            }
        },
    )
}
