//! `man`: one self-contained page. clap_mangen renders a page per command and points at
//! `docker-credential-latchkey-<command>(1)` pages nobody installs; here every command gets a
//! subsection of the one page, followed by the CONFIGURATION, ENVIRONMENT and FILES sections
//! a user looks for.

use std::io::Write;

use clap_mangen::Man;

/// The page, as roff.
pub fn render(out: &mut dyn Write) -> std::io::Result<()> {
    let mut cmd = crate::cli::command();
    cmd.build();
    let man = Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    out.write_all(SYNOPSIS.as_bytes())?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;

    out.write_all(b".SH COMMANDS\n")?;
    for sub in cmd.get_subcommands() {
        writeln!(out, ".SS {}", sub.get_name())?;
        let sub_man = Man::new(sub.clone());
        let mut body = Vec::new();
        sub_man.render_synopsis_section(&mut body)?;
        sub_man.render_description_section(&mut body)?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            sub_man.render_options_section(&mut body)?;
        }
        out.write_all(&without_headings(&body))?;
    }

    out.write_all(FIXED_SECTIONS.as_bytes())?;
    man.render_version_section(out)?;
    Ok(())
}

/// A sub-page's body inside a subsection: no section headings, no repeated preamble.
fn without_headings(roff: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(roff);
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with(".SH ") {
            // Keep the parts apart.
            out.push_str(".PP\n");
            continue;
        }
        if line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.into_bytes()
}

const SYNOPSIS: &str = r#".SH SYNOPSIS
\fBdocker\-credential\-latchkey\fR \fBget\fR|\fBstore\fR|\fBerase\fR|\fBlist\fR|\fBversion\fR
.br
\fBdocker\-credential\-latchkey\fR \fICOMMAND\fR [\fIOPTIONS\fR] [\fIARGS\fR]
.br
\fBdocker\-credential\-latchkey\fR \fBhelp\fR [\fICOMMAND\fR]
"#;

const FIXED_SECTIONS: &str = r#".SH CONFIGURATION
The config file (see FILES) is TOML; without it every registry is in \fBstored\fR mode.
.PP
.nf
store = "auto"            # auto | keyring | file

[registries."ghcr.io"]
mode = "stored"           # what docker login stored

[registries."reg.internal:5000"]
mode = "static\-bearer"    # a bearer token from the identity below
min\-validity\-secs = 120
[registries."reg.internal:5000".identity]
source = "file"           # file | env | command | http | exchange | mint | github\-actions | gitlab
path = "/var/run/secrets/registry/token"

[registries."atcr.example"]
mode = "device"           # log in once in the browser (login), then a device secret
.fi
.PP
\fBstore\fR picks where stored credentials live: \fBkeyring\fR (the Secret Service), \fBfile\fR
(a private JSON file), or \fBauto\fR (the keyring when it answers, else the file).
A static\-bearer registry's \fBidentity\fR table says where its token comes from: a file read on
every use (\fBpath\fR), an environment variable (\fBvar\fR), a program (\fBargv\fR), an identity
endpoint (\fBurl\fR), an RFC 8693 token exchange of another identity (\fBurl\fR, \fBsubject\fR), a JWT
latchkey signs itself (\fBmint\fR: \fBalgorithm\fR, \fBprivate\-key\-file\fR, \fBissuer\fR, \fBsubject\fR,
\fBaudience\fR), or the CI's OIDC token (\fBgithub\-actions\fR, \fBgitlab\fR).
The file must be writable by its owner alone, as must its directory.
Run \fBdocker\-credential\-latchkey status\fR to see what latchkey made of it; it exits 1 and
says what to fix when something is wrong.
.PP
docker finds the helper through its own config: \fBconfigure\-docker REGISTRY\fR writes
\fB"credHelpers": {"REGISTRY": "latchkey"}\fR into \fI~/.docker/config.json\fR (the value is
\fBlatchkey\fR, without the docker\-credential\- prefix), and the binary must be on PATH.
.SH ENVIRONMENT
.TP
\fBLATCHKEY_CONFIG\fR
The config file to use instead of the default; it must exist.
.TP
\fBLATCHKEY_STORE\fR
\fBauto\fR, \fBkeyring\fR or \fBfile\fR: overrides the config's \fBstore\fR.
.TP
\fBLATCHKEY_DATA_DIR\fR
The file store's directory.
.TP
\fBLATCHKEY_CACHE_DIR\fR
The token cache's directory.
.TP
\fBLATCHKEY_INTERACTIVE\fR
\fB1\fR or \fB0\fR: whether \fBlogin\fR may open a browser (by default: not in CI, over SSH or
without a display).
.TP
\fBLATCHKEY_QR\fR
\fB1\fR or \fB0\fR: whether \fBlogin\fR prints the verification URL as a QR code (by default when
stderr is a terminal).
.TP
\fBBROWSER\fR
The program \fBlogin\fR opens the verification URL with.
.TP
\fBDOCKER_CONFIG\fR
The directory holding docker's \fIconfig.json\fR (default \fI~/.docker\fR).
.TP
\fBREGISTRY_AUTH_FILE\fR
A containers \fIauth.json\fR that \fBpull\fR and \fBhosts\-toml\fR read after docker's config.
.TP
\fBXDG_CONFIG_HOME\fR, \fBXDG_DATA_HOME\fR, \fBXDG_CACHE_HOME\fR
The base directories of the default locations below.
.SH FILES
.TP
\fI$XDG_CONFIG_HOME/latchkey/config.toml\fR (\fI~/.config/latchkey/config.toml\fR)
The config file.
.TP
\fI$XDG_DATA_HOME/latchkey/credentials.json\fR (\fI~/.local/share/latchkey/credentials.json\fR)
The file store (mode 0600), when the keyring is not used.
.TP
\fI$XDG_CACHE_HOME/latchkey/\fR (\fI~/.cache/latchkey/\fR)
Cached static\-bearer tokens, until they near their expiry.
.TP
\fI~/.docker/config.json\fR
docker's config: \fBcredHelpers\fR routes registries to latchkey; \fBpull\fR and \fBhosts\-toml\fR
resolve credentials from it.
.TP
\fI$XDG_RUNTIME_DIR/containers/auth.json\fR, \fI~/.config/containers/auth.json\fR
podman's and skopeo's credentials, read by \fBpull\fR and \fBhosts\-toml\fR after docker's config.
.SH EXIT STATUS
0 on success, 1 on failure. The protocol verbs print their errors on stdout (as docker expects);
the other commands print them on stderr.
.SH SEE ALSO
\fBdocker\fR(1), \fBskopeo\fR(1), \fBpodman\fR(1)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// The CONFIGURATION example is a config latchkey accepts.
    #[test]
    fn configuration_example_parses() {
        let example = FIXED_SECTIONS.split_once(".nf\n").unwrap().1.split_once(".fi\n").unwrap().0;
        let text = example.replace("\\-", "-");
        let config =
            crate::config::Config::parse(std::path::Path::new("man.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.registries.len(), 3);
    }
}
