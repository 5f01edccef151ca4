"""The render-farm path: a shot's edit as an Open Job Description job (docs/farm.md).

In: a shot, a prompt and edit settings. Out: a job bundle whose three steps — Keyframes,
Propagate (one task per chunk of frames), Assemble — produce the frames the one-machine
`ipfacediff edit` produces. `template` writes the bundle, `split` says how the edit splits,
`steps` does each step's work, `status` prints OpenJD progress lines, `cli` the commands.
"""
