from services.sessions.app import create_app
from shared.app import serve

serve("sessions", create_app)
