//! The baseline of the Docker benchmark (bench/docker.sh): a plain create, start, wait and
//! remove of one container through the Engine API, with nothing else around it.
//!
//! `cargo run --release --example docker_baseline -- IMAGE COMMAND` runs `sh -c COMMAND`.

use std::process::ExitCode;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::RemoveContainerOptions;
use futures_util::StreamExt;
use lockstep::support::docker_engine::Engine;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [image, command] = args.as_slice() else {
        eprintln!("usage: docker_baseline IMAGE COMMAND");
        return ExitCode::from(2);
    };
    let engine = match Engine::connect() {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let docker = engine.docker();
    let code = engine.block_on(async {
        let config = ContainerCreateBody {
            image: Some(image.clone()),
            cmd: Some(vec!["sh".into(), "-c".into(), command.clone()]),
            ..Default::default()
        };
        let id = docker.create_container(None, config).await.expect("create").id;
        docker.start_container(&id, None).await.expect("start");
        let code = match docker.wait_container(&id, None).next().await {
            Some(Ok(r)) => r.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            other => panic!("wait: {other:?}"),
        };
        let options = RemoveContainerOptions { force: true, ..Default::default() };
        docker.remove_container(&id, Some(options)).await.expect("remove");
        code
    });
    ExitCode::from(code.clamp(0, 255) as u8)
}
