//! The Go peer and the Go clients (`conformance/peers/go/`): a third gRPC
//! stack (grpc-go, beside tonic and grpcio) implementing our contracts,
//! built from Debian's Go packages alone, with no Go module proxy and no
//! protoc.
//!
//! [`ensure_go_peers`] generates the stubs with the pinned `buf` CLI, using
//! Debian's `protoc-gen-go` and `protoc-gen-go-grpc` as local plugins, into
//! `tools/go/src`, a GOPATH of the repository's own; then it builds the
//! server and the seeds' clients in GOPATH mode into `tools/go/bin`.
//! Nothing generated is committed, as with the Python peers: the stubs are
//! always those of the `.proto` files the programs are built against. Go's
//! build cache (`tools/go/cache` unless `GOCACHE` says otherwise) makes a
//! rebuild with nothing changed take a few seconds.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use anyhow::{Context, Result, bail};

use crate::{project_root, step, tools};

/// What `apt-get install` needs on Debian (bookworm) for [`ensure_go_peers`].
pub const APT_PACKAGES: &[&str] = &[
    "golang-go",
    "golang-google-grpc-dev",
    "golang-github-golang-protobuf-1-5-dev",
    "protoc-gen-go",
    "protoc-gen-go-grpc",
    "golang-github-aws-aws-sdk-go-dev",
    "golang-golang-x-image-dev",
];

/// The server, in the folder [`ensure_go_peers`] returns.
pub const SERVER: &str = "go-peer-server";
/// Seed 000's client: images over `mensagem.ImagemService`, in lockstep.
pub const IMAGEM_SENDER: &str = "imagem-sender";
/// Seed 001's client: a file to `uploader.FileUploader`.
pub const FILE_UPLOADER: &str = "file-uploader";
/// Seed 004's client: random chunks to `uploader.UploaderService`.
pub const CHUNK_UPLOADER: &str = "chunk-uploader";

/// Each program, and its folder under `conformance/peers/go/`.
const PROGRAMS: &[(&str, &str)] = &[
    (SERVER, "server"),
    (IMAGEM_SENDER, "imagem-sender"),
    (FILE_UPLOADER, "file-uploader"),
    (CHUNK_UPLOADER, "chunk-uploader"),
];

/// The folders under `proto/` whose contracts the Go programs use (every
/// one but inference); `buf.gen.yaml` maps each of their files to a Go
/// import path.
const CONTRACTS: &[&str] = &["calculator", "streaming", "coreservices", "uploader", "mensagem"];

/// Where Debian's Go packages keep their sources: the GOPATH after ours.
const DEBIAN_GOPATH: &str = "/usr/share/gocode";

/// A file each Go dependency must have, and the apt package it comes from.
/// `proto/registry.go` exists from golang/protobuf 1.4 on: grpc-go pulls in
/// the 1.3 shim otherwise, with which every message of the current
/// protoc-gen-go panics on its first request.
const GO_SOURCES: &[(&str, &str)] = &[
    ("google.golang.org/grpc/reflection/serverreflection.go", "golang-google-grpc-dev"),
    ("google.golang.org/grpc/health/server.go", "golang-google-grpc-dev"),
    ("github.com/golang/protobuf/proto/registry.go", "golang-github-golang-protobuf-1-5-dev"),
    ("github.com/aws/aws-sdk-go/service/s3/api.go", "golang-github-aws-aws-sdk-go-dev"),
    ("golang.org/x/image/webp/decode.go", "golang-golang-x-image-dev"),
];

/// Generates the Go stubs and builds the Go server and clients, once per
/// xtask run; returns the folder that holds them (`tools/go/bin`), for
/// `GO_PEERS`.
pub fn ensure_go_peers() -> Result<PathBuf> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    if let Some(bin) = BUILT.get() {
        return Ok(bin.clone());
    }
    let bin = build()?;
    Ok(BUILT.get_or_init(|| bin).clone())
}

fn build() -> Result<PathBuf> {
    let root = project_root();
    check_toolchain()?;
    let buf = tools::ensure_buf()?;
    // mensagem.proto and streaming.proto import buf/validate/validate.proto.
    crate::protovalidate::materialize(&root.join("proto"))?;

    let gopath = root.join("tools").join("go");
    let (src, bin) = (gopath.join("src"), gopath.join("bin"));
    step(&format!("generating the Go stubs with buf into {}", src.display()));
    // Afresh, so that stubs of a renamed or deleted .proto never linger.
    if src.exists() {
        std::fs::remove_dir_all(&src).with_context(|| format!("removing {}", src.display()))?;
    }
    std::fs::create_dir_all(&src)?;
    let mut generate = Command::new(&buf);
    generate
        .args(["generate", "proto", "--template", "conformance/peers/go/buf.gen.yaml", "--output"])
        .arg(&src);
    for contract in CONTRACTS {
        generate.args(["--path", &format!("proto/{contract}")]);
    }
    let status = generate.current_dir(&root).status().context("running buf")?;
    if !status.success() {
        bail!("`buf generate` of the Go stubs failed (its output is above)");
    }

    step(&format!("building the Go peer and clients (conformance/peers/go) into {}", bin.display()));
    let cache = std::env::var_os("GOCACHE").unwrap_or_else(|| gopath.join("cache").into());
    for (program, folder) in PROGRAMS {
        let status = go(&gopath)
            .env("GOCACHE", &cache)
            .args(["build", "-o"])
            .arg(bin.join(program))
            .arg(format!("./conformance/peers/go/{folder}"))
            .current_dir(&root)
            .status()
            .context("running go build")?;
        if !status.success() {
            bail!("`go build` of conformance/peers/go/{folder} failed (its output is above)");
        }
    }
    Ok(bin)
}

/// The `--target-cmd` that starts the Go server, for the conformance suite.
pub fn server_command() -> Result<String> {
    let server = ensure_go_peers()?.join(SERVER);
    Ok(format!(
        "{} --addr {{addr}} --max-message-size {{max_message_size}} --bucket {{s3_bucket}} \
         --part-size {{part_size}} --shutdown-grace 2",
        server.display()
    ))
}

/// `go` in GOPATH mode, with our GOPATH first and Debian's after it, and
/// nothing from the environment that would reach for the module proxy or a
/// C compiler.
fn go(gopath: &Path) -> Command {
    let mut command = Command::new("go");
    let paths = [gopath.as_os_str(), Path::new(DEBIAN_GOPATH).as_os_str()];
    command
        .env("GO111MODULE", "off")
        .env("GOPATH", std::env::join_paths(paths).expect("no ':' in these paths"))
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "0");
    command
}

/// Says which apt packages are missing, all at once, before anything runs.
fn check_toolchain() -> Result<()> {
    let mut missing: Vec<&str> = Vec::new();
    let mut add = |package: &'static str| {
        if !missing.contains(&package) {
            missing.push(package);
        }
    };
    if Command::new("go").arg("version").output().is_err() {
        add("golang-go");
    }
    for plugin in ["protoc-gen-go", "protoc-gen-go-grpc"] {
        if !on_path(plugin) {
            add(plugin);
        }
    }
    for (file, package) in GO_SOURCES {
        if !Path::new(DEBIAN_GOPATH).join("src").join(file).is_file() {
            add(package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    bail!(
        "the Go peer and clients are built with Debian's Go packages, and {} missing: \
         apt-get install {}\n(all of them: apt-get install {})",
        if missing.len() == 1 { "this one is" } else { "these are" },
        missing.join(" "),
        APT_PACKAGES.join(" ")
    )
}

fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|folder| folder.join(program).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// protoc-gen-go needs a Go import path for every file it is given: a
    /// `.proto` added to a contract the Go programs use must be mapped in
    /// `buf.gen.yaml`, or `buf generate` fails.
    #[test]
    fn every_contract_file_has_a_go_import_path() {
        let root = project_root();
        let template = std::fs::read_to_string(root.join("conformance/peers/go/buf.gen.yaml")).unwrap();
        for contract in CONTRACTS {
            for entry in std::fs::read_dir(root.join("proto").join(contract)).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if name.ends_with(".proto") {
                    let option = format!("- M{contract}/{name}=");
                    assert!(
                        template.contains(&option),
                        "conformance/peers/go/buf.gen.yaml has no `{option}...` for proto/{contract}/{name}"
                    );
                }
            }
        }
    }

    /// The programs' folders exist, so a rename cannot leave xtask building
    /// nothing.
    #[test]
    fn every_program_has_its_folder() {
        for (_, folder) in PROGRAMS {
            let main = project_root().join("conformance/peers/go").join(folder).join("main.go");
            assert!(main.is_file(), "{} is missing", main.display());
        }
    }
}
