use contracts::calculator::{CubeRequest, calculator_client::CalculatorClient};
use services::calculator::MAX_CUBE_INPUT;
use tonic::Code;

use crate::support::{assert_code, start};

#[tokio::test]
async fn cubes_every_number_in_range_exactly() {
    let (_server, channel) = start().await;
    let mut client = CalculatorClient::new(channel);
    for number in [0, 1, -1, 2, -3, 5, 1000, -77_777, MAX_CUBE_INPUT - 1, MAX_CUBE_INPUT, -MAX_CUBE_INPUT] {
        let result = client.cube(CubeRequest { number }).await.unwrap().into_inner().result;
        assert_eq!(i128::from(result), i128::from(number).pow(3), "cube of {number}");
    }
}

#[tokio::test]
async fn rejects_cubes_that_overflow_int64() {
    let (_server, channel) = start().await;
    let mut client = CalculatorClient::new(channel);
    for number in [MAX_CUBE_INPUT + 1, -MAX_CUBE_INPUT - 1, i64::MAX, i64::MIN, 1 << 40] {
        let status = assert_code(client.cube(CubeRequest { number }).await, Code::OutOfRange);
        assert!(status.message().contains(&number.to_string()), "{status:?}");
    }
    // The server keeps answering after an error.
    assert_eq!(client.cube(CubeRequest { number: 2 }).await.unwrap().into_inner().result, 8);
}
