// The Node flags of a `tributary` process, in one place: package.json's start script, the
// installed command's shebang, the image's entrypoint and every test and bench process that runs
// the server use them, and test/main/node-flags.test.ts keeps those places in step.
//
// --liftoff-only keeps WebAssembly on V8's baseline compiler. The embedded registry (PGlite, about
// 9 MB of WebAssembly) otherwise has TurboFan compile its hottest functions during the first
// queries: a start then costs about 6 s of CPU instead of 3.4 s and peaks at about 915 MiB RSS
// instead of 335 MiB (idle RSS 420 → 335 MiB), for registry queries about 1.1-1.4x slower
// (docs/benchmarks.md, "Start cost"). Registry reads on the message path go through the cache.
export const NODE_FLAGS: readonly string[] = ['--liftoff-only']
