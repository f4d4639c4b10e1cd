//! `prost-protovalidate-types` compiles `validate.proto` in its build script
//! through prost-build, which runs `$PROTOC`. This project has no protoc: the
//! contracts are compiled by protox. This binary takes the few flags
//! prost-build passes and answers with protox's descriptor set, so no user
//! has to install protoc to build the suite.

use std::process::ExitCode;

#[derive(Default)]
struct Args {
    includes: Vec<String>,
    files: Vec<String>,
    out: Option<String>,
    include_imports: bool,
    include_source_info: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args::default();
    while let Some(arg) = args.next() {
        let value = |prefix: &str| arg.strip_prefix(prefix).map(str::to_owned);
        match arg.as_str() {
            "--version" => return Ok(None),
            "--include_imports" => parsed.include_imports = true,
            "--include_source_info" => parsed.include_source_info = true,
            "-o" | "--descriptor_set_out" => parsed.out = args.next(),
            "-I" | "--proto_path" => parsed.includes.extend(args.next()),
            // prost-build asks for proto3 optional support, which protox has.
            _ if arg.starts_with("--experimental") => {}
            _ if arg.starts_with("--descriptor_set_out=") => parsed.out = value("--descriptor_set_out="),
            _ if arg.starts_with("--proto_path=") => parsed.includes.extend(value("--proto_path=")),
            _ if arg.starts_with("-o") => parsed.out = value("-o"),
            _ if arg.starts_with("-I") => parsed.includes.extend(value("-I")),
            _ if arg.starts_with('-') => return Err(format!("unsupported option {arg}")),
            _ => parsed.files.push(arg),
        }
    }
    Ok(Some(parsed))
}

fn run(args: Args) -> Result<(), String> {
    let out = args.out.ok_or("no output file: pass -o FILE")?;
    let mut compiler = protox::Compiler::new(&args.includes).map_err(|err| err.to_string())?;
    compiler.include_imports(args.include_imports).include_source_info(args.include_source_info);
    compiler.open_files(&args.files).map_err(|err| err.to_string())?;
    std::fs::write(&out, compiler.encode_file_descriptor_set()).map_err(|err| format!("writing {out}: {err}"))
}

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)) {
        // prost-build checks the version for proto3 optional; protox has it.
        Ok(None) => {
            println!("libprotoc 3.21.0");
            ExitCode::SUCCESS
        }
        Ok(Some(args)) => match run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("protoc (protox): {err}");
                ExitCode::FAILURE
            }
        },
        Err(err) => {
            eprintln!("protoc (protox): {err}");
            ExitCode::from(2)
        }
    }
}
