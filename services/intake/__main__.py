from services.intake.app import create_app
from shared.app import serve

serve("intake", create_app)
