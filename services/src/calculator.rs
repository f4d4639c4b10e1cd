//! `calculator.Calculator`: the unary cube (seed 002).

use contracts::calculator::{
    CubeRequest, CubeResponse,
    calculator_server::{self, CalculatorServer},
};
use tonic::{Request, Response, Status};

/// Largest |n| the contract accepts: 2097151³ < 2⁶³ ≤ 2097152³. (The cube of
/// -2097152 is exactly `i64::MIN`, but the contract bounds |n| symmetrically,
/// so it is rejected too.)
pub const MAX_CUBE_INPUT: i64 = 2_097_151;

/// Stateless; the contract promises exact results or OUT_OF_RANGE, never a
/// wrapped value.
#[derive(Debug, Default, Clone, Copy)]
pub struct Calculator;

impl Calculator {
    /// The generated server around this implementation.
    pub fn server(self) -> CalculatorServer<Self> {
        CalculatorServer::new(self)
    }
}

#[tonic::async_trait]
impl calculator_server::Calculator for Calculator {
    async fn cube(&self, request: Request<CubeRequest>) -> Result<Response<CubeResponse>, Status> {
        let number = request.into_inner().number;
        if !(-MAX_CUBE_INPUT..=MAX_CUBE_INPUT).contains(&number) {
            return Err(Status::out_of_range(format!(
                "the cube of {number} does not fit in int64: |number| must be at most {MAX_CUBE_INPUT}"
            )));
        }
        Ok(Response::new(CubeResponse { result: number * number * number }))
    }
}
