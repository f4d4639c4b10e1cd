//! Our implementations of the seed contracts.
//!
//! Each contract lives in its own module and knows nothing about transport;
//! [`server`] puts them all on one port beside reflection and health. Tests
//! and the benchmarks start exactly the server users run, through
//! [`server::spawn`]; the conformance suite starts the `services` binary as
//! a process of its own and links none of this.

mod auth;
pub mod calculator;
mod connections;
mod container;
pub mod coreservices;
mod deadline;
pub mod fileuploader;
pub mod imagem;
pub mod inference;
mod limits;
mod rules;
pub mod s3;
pub mod security;
pub mod server;
pub mod streaming;
pub mod uploader;

pub use server::{Config, RunningServer, Shutdown, serve, serve_with, spawn};
