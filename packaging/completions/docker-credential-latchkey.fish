# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_docker_credential_latchkey_global_optspecs
    string join \n h/help V/version
end

function __fish_docker_credential_latchkey_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_docker_credential_latchkey_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_docker_credential_latchkey_using_subcommand
    set -l cmd (__fish_docker_credential_latchkey_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -s V -l version -d 'Print version'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "get" -d 'Protocol: print the credentials for the server URL on stdin as JSON'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "store" -d 'Protocol: store {"ServerURL","Username","Secret"} read from stdin'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "erase" -d 'Protocol: erase the credentials for the server URL on stdin'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "list" -d 'Protocol: print {server URL: username} of everything stored'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "version" -d 'Protocol: print the version'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "configure-docker" -d 'Point docker\'s config.json credHelpers at latchkey for REGISTRY...'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "unconfigure-docker" -d 'Remove latchkey\'s credHelpers entries for REGISTRY... from docker\'s config.json'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "status" -d 'Show the store in use and why, the config, and each registry\'s mode'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "token" -d 'Print the bearer token for a static-bearer REGISTRY (for scripts)'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "header" -d 'Print `Authorization: Bearer <token>` for a static-bearer REGISTRY (curl -H @-)'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "login" -d 'Log in to a device-mode REGISTRY in the browser (RFC 8628) and store its device secret'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "logout" -d 'Revoke (where configured) and erase the device secret of REGISTRY'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "pull" -d 'Pull an image into an OCI image layout, with credentials resolved from docker\'s config'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "hosts-toml" -d 'Print (or --write) a containerd hosts.toml carrying a static-bearer registry\'s header'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_needs_command" -f -a "man" -d 'Print the man page (roff)'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand store" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand erase" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand version" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand configure-docker" -l config -d 'docker config file to edit [default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json]' -r -F
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand configure-docker" -l force -d 'Replace another helper\'s entry for these registries'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand configure-docker" -l dry-run -d 'Show the change as a diff without writing it'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand configure-docker" -l containers-auth -d 'Also edit containers-auth.json for podman, skopeo and buildah ($REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json)'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand configure-docker" -s h -l help -d 'Print help'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand unconfigure-docker" -l config -d 'docker config file to edit [default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json]' -r -F
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand unconfigure-docker" -l dry-run -d 'Show the change as a diff without writing it'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand unconfigure-docker" -l containers-auth -d 'Also edit containers-auth.json for podman, skopeo and buildah ($REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json)'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand unconfigure-docker" -s h -l help -d 'Print help'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand status" -l json -d 'Machine-readable output (JSON on stdout)'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand status" -l check -d 'Also ask each registry\'s /v2/ endpoint (anonymously, 5 s at most each) and show its answer'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand status" -s h -l help -d 'Print help'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand token" -s h -l help -d 'Print help'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand header" -s h -l help -d 'Print help'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand login" -s h -l help -d 'Print help'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand logout" -s h -l help -d 'Print help'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand pull" -s o -l output -d 'OCI image layout directory to write (created if missing; an existing layout is added to)' -r -F
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand pull" -l platform -d 'Platform to pull from a multi-platform image [default: linux/<this machine>]' -r
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand pull" -l concurrency -d 'Blobs to fetch at once' -r
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand pull" -l stall-timeout -d 'Stop when, for this many seconds, no manifest or blob finished and less than 64 KiB arrived (a stalled or trickling server); 0 waits forever' -r
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand pull" -l helper-timeout -d 'Stop a credential helper that takes longer than this many seconds' -r
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand pull" -l all-platforms -d 'Pull every platform of a multi-platform image, and the index itself'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand pull" -l json -d 'Print a JSON summary on stdout'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand pull" -s q -l quiet -d 'No progress bars, even on a terminal'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand pull" -l plain-http -d 'Use plain HTTP for every registry. Without it, only registries named as this machine get plain HTTP: localhost, *.localhost, 127.0.0.0/8 and [::1] (by name, no DNS lookup: another name for 127.0.0.1 gets HTTPS); every other registry gets HTTPS'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand pull" -l https-only -d 'Use HTTPS for every registry, those on this machine (localhost, *.localhost, 127.0.0.0/8, [::1]) too'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand pull" -s h -l help -d 'Print help'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand hosts-toml" -l write -d 'Write DIR/<registry>/hosts.toml (mode 0600) instead of printing it; DIR is containerd\'s config_path, usually /etc/containerd/certs.d' -r -F
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand hosts-toml" -l helper-timeout -d 'Stop a credential helper that takes longer than this many seconds' -r
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand hosts-toml" -l plain-http -d 'Use plain HTTP for every registry. Without it, only registries named as this machine get plain HTTP: localhost, *.localhost, 127.0.0.0/8 and [::1] (by name, no DNS lookup: another name for 127.0.0.1 gets HTTPS); every other registry gets HTTPS'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand hosts-toml" -l https-only -d 'Use HTTPS for every registry, those on this machine (localhost, *.localhost, 127.0.0.0/8, [::1]) too'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand hosts-toml" -s h -l help -d 'Print help'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand completions" -s h -l help -d 'Print help'
complete -c docker-credential-latchkey -n "__fish_docker_credential_latchkey_using_subcommand man" -s h -l help -d 'Print help'
