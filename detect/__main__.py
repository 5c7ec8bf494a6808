from detect.cli import main

main(prog_name="python -m detect")
