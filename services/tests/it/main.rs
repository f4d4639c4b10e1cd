//! Every RPC of every contract, and every error code the contracts promise,
//! through a real tonic client over loopback.

mod calculator;
mod cli;
mod coreservices;
mod fileuploader;
mod imagem;
mod inference;
mod interop;
mod security;
mod server;
mod streaming;
mod support;
mod uploader;
