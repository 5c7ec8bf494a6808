from augment.cli import main

main(prog_name="python -m augment")
