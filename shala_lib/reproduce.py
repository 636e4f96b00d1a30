"""The reproduction command: every notebook of a profile, headless (`shala_lib.pipeline.runner`).

python -m shala_lib.reproduce --profile smoke
shala-reproduce --profile paper
"""

from shala_lib.pipeline.runner import main

if __name__ == "__main__":
    raise SystemExit(main())
