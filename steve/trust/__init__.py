"""Trust: signing identities, signatures and signed records, DSSE envelopes, in-toto
SLSA provenance and CycloneDX SBOMs (docs/trust.md).  Below the repository: nothing
here opens a repository, reads the environment or prompts."""
