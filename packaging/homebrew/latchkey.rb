class Latchkey < Formula
  desc "Docker credential helper for container registries (Keychain, static bearer JWTs)"
  homepage "https://github.com/latchkey/latchkey"
  url "https://github.com/latchkey/latchkey/archive/refs/tags/v0.1.0.tar.gz"
  # sha256 is filled in by the release process for the tagged tarball.
  license any_of: ["MIT", "Apache-2.0"]
  head "https://github.com/latchkey/latchkey.git", branch: "main"

  depends_on "rust" => :build

  def install
    system "cargo", "install", *std_cargo_args
    man1.install "packaging/man/docker-credential-latchkey.1"
    bash_completion.install "packaging/completions/docker-credential-latchkey.bash" => "docker-credential-latchkey"
    zsh_completion.install "packaging/completions/_docker-credential-latchkey"
    fish_completion.install "packaging/completions/docker-credential-latchkey.fish"
  end

  test do
    output = pipe_output("#{bin}/docker-credential-latchkey get", "latchkey-brew-test.invalid", 1)
    assert_match "credentials not found in native keychain", output
    assert_match version.to_s, shell_output("#{bin}/docker-credential-latchkey version")
  end
end
