//! `status`: which store is in use and why, the config, and each registry's mode.

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
}

pub fn run(_args: &StatusArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
