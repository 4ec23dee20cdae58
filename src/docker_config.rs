//! `configure-docker` / `unconfigure-docker`: edit docker's config.json credHelpers.

#[derive(clap::Args, Debug)]
pub struct ConfigureArgs {
    /// Registries to route to latchkey (ghcr.io, localhost:5000, ...)
    #[arg(required = true)]
    pub registries: Vec<String>,
    /// Replace another helper's entry for these registries
    #[arg(long)]
    pub force: bool,
    /// Show the change as a diff without writing it
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub struct UnconfigureArgs {
    /// Registries whose latchkey entries to remove
    #[arg(required = true)]
    pub registries: Vec<String>,
    /// Show the change as a diff without writing it
    #[arg(long)]
    pub dry_run: bool,
}

pub fn configure(_args: &ConfigureArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}

pub fn unconfigure(_args: &UnconfigureArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}

/// What `status` shows about docker's config (placeholder until configure-docker lands).
#[derive(serde::Serialize)]
pub struct DockerReport {
    pub path: String,
}

impl std::fmt::Display for DockerReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.path)
    }
}

pub fn report() -> Option<DockerReport> {
    None
}
