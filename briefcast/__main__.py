from briefcast.cli import app

app()
