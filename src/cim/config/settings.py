"""CIM settings. Every value comes from a `CIM_*` environment variable; see docs/configuration.md."""

import os
from pathlib import Path
from secrets import token_urlsafe

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE

from cim.config.secrets import key_generate, load_or_create
from cim.core.logging import logging_config

BASE_DIR = Path(__file__).resolve().parents[3]
DATA_DIR = Path(os.environ.get("CIM_DATA_DIR", BASE_DIR / "var")).resolve()


def _env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _env_bool("CIM_DEBUG", False)
SECRET_KEY = load_or_create(DATA_DIR, "CIM_SECRET_KEY", "secret_key")
# Keys the HMAC search and duplicate keys of phones and emails (DESIGN §5); kept outside the database.
CIM_SEARCH_KEY = load_or_create(DATA_DIR, "CIM_SEARCH_KEY", "search_key")
# Keys the audit log's HMAC chain (docs/audit.md); kept outside the database, and best outside the data dir too.
CIM_AUDIT_KEY = load_or_create(DATA_DIR, "CIM_AUDIT_KEY", "audit_key")
# AES-GCM keys of the sensitive fields, `kid:base64key,...`, the first one current (docs/encryption.md).
CIM_ENCRYPTION_KEY_FILE = None if os.environ.get("CIM_ENCRYPTION_KEYS") else DATA_DIR / "encryption_keys"
CIM_ENCRYPTION_KEYS = load_or_create(DATA_DIR, "CIM_ENCRYPTION_KEYS", "encryption_keys", generate=key_generate)
ALLOWED_HOSTS = [h for h in os.environ.get("CIM_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CIM_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "ninja",
    "django_tasks",
    "django_tasks_db",
    "cim.core",
    "cim.accounts",
    "cim.audit",
    "cim.quality",
    "cim.customers",
    "cim.search",
    "cim.ingest",
    "cim.activities",
    "cim.service",
    "cim.analytics",
    "cim.segments",
    "cim.privacy",
    "cim.automation",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "cim.backups",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "cim.core.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "cim.core.middleware.ApiJsonErrorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "cim.accounts.middleware.SessionTimeoutMiddleware",
    "cim.accounts.middleware.AdministratorMfaMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "cim.audit.middleware.AccessDeniedAuditMiddleware",
    "cim.core.middleware.UnavailableMiddleware",
    "cim.core.middleware.AccessLogMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "cim.config.urls"
WSGI_APPLICATION = "cim.config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "customers:list"
LOGOUT_REDIRECT_URL = "account_login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "cim.activities.context_processors.follow_ups",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("CIM_DATABASE_URL") or f"sqlite:///{DATA_DIR / 'cim.sqlite3'}",
        conn_max_age=int(os.environ.get("CIM_DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the worker and the web process read while the other writes.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
        " PRAGMA mmap_size=1073741824; PRAGMA temp_store=MEMORY;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
# Exports, analytics and duplicate scans read from a streaming replica when there is one (docs/deploy.md).
if os.environ.get("CIM_DATABASE_REPLICA_URL"):
    DATABASES["replica"] = dj_database_url.parse(
        os.environ["CIM_DATABASE_REPLICA_URL"], conn_max_age=DATABASES["default"]["CONN_MAX_AGE"]
    )
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["cim.core.replica.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Background jobs: in the database by default; on Redis with `django_tasks_rq.RQBackend` (and CIM_REDIS_URL).
TASKS = {"default": {"BACKEND": os.environ.get("CIM_TASKS_BACKEND", "django_tasks_db.DatabaseBackend")}}
# Each worker beats this often; one silent for four beats counts as gone and its running job is queued again.
# How long a migration may wait for a table lock on PostgreSQL before it gives up (docs/deploy.md).
CIM_MIGRATION_LOCK_TIMEOUT = os.environ.get("CIM_MIGRATION_LOCK_TIMEOUT", "10s")
CIM_WORKER_HEARTBEAT_SECONDS = float(os.environ.get("CIM_WORKER_HEARTBEAT_SECONDS", "30"))
if TASKS["default"]["BACKEND"].startswith("django_tasks_rq."):
    INSTALLED_APPS.append("django_rq")

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# ASVS 5.0 V6.2 (docs/security.md): long passphrases welcome, no composition rules, common passwords refused.
CIM_PASSWORD_MIN_LENGTH = int(os.environ.get("CIM_PASSWORD_MIN_LENGTH", "15"))
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": CIM_PASSWORD_MIN_LENGTH},
    },
    {"NAME": "cim.accounts.passwords.MaximumLengthValidator", "OPTIONS": {"max_length": 128}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "cim.accounts.passwords.BreachedPasswordValidator"},
]
# Breached passwords (ASVS 5.0 V6.2.12): HIBP's SHA-1 Pwned Passwords file, searched offline; and, opt-in, the range
# API ("true" for HIBP's, or the URL of a mirror), which sends the first 5 hex digits of the password's SHA-1.
CIM_PWNED_PASSWORDS_FILE = os.environ.get("CIM_PWNED_PASSWORDS_FILE", "")
_pwned_api = os.environ.get("CIM_PWNED_PASSWORDS_API", "").strip()
if _pwned_api.lower() in {"", "0", "false", "no", "off"}:
    CIM_PWNED_PASSWORDS_API = ""
elif _pwned_api.lower() in {"1", "true", "yes", "on"}:
    CIM_PWNED_PASSWORDS_API = "https://api.pwnedpasswords.com/range/"
else:
    CIM_PWNED_PASSWORDS_API = _pwned_api.rstrip("/") + "/"  # the prefix is appended
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# django-allauth: login by username (administrators create accounts, nobody signs up), MFA with TOTP and
# recovery codes (mandatory for administrators, cim.accounts.middleware), lockout per username and address.
ACCOUNT_ADAPTER = "cim.accounts.adapter.CimAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
CIM_LOGIN_FAILURES = int(os.environ.get("CIM_LOGIN_FAILURES", "5"))
CIM_LOGIN_LOCKOUT_MINUTES = int(os.environ.get("CIM_LOGIN_LOCKOUT_MINUTES", "15"))
ACCOUNT_RATE_LIMITS = {
    # "key" is (username, client address), see CimAccountAdapter; "ip" also caps password spraying from one address.
    "login_failed": f"30/10m/ip,{CIM_LOGIN_FAILURES}/{CIM_LOGIN_LOCKOUT_MINUTES * 60}s/key",
}
# Roles that must set up MFA besides administrators (comma-separated, e.g. "manager,analyst"; all roles: ASVS L2).
CIM_MFA_REQUIRED_ROLES = [r for r in os.environ.get("CIM_MFA_REQUIRED_ROLES", "").split(",") if r]
MFA_ADAPTER = "cim.accounts.adapter.CimMfaAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "CIM"
# One 30-second step either side, as RFC 6238 §5.2 advises: a code typed in its last seconds, or from a phone whose
# clock is a little off, still works; allauth refuses a code used once for the whole window.
MFA_TOTP_TOLERANCE = 1
MFA_RECOVERY_CODE_COUNT = 10
MFA_RECOVERY_CODES_SHOW_ONCE = True
MFA_PASSKEY_LOGIN_ENABLED = False

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [Path(__file__).resolve().parents[1] / "locale"]
TIME_ZONE = os.environ.get("CIM_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request when it is missing
# Front-end assets are pinned in package-lock.json and copied by `make assets` into core/static/vendor (ignored).
STATICFILES_DIRS: list = []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = DATA_DIR / "uploads"
WHITENOISE_USE_FINDERS = DEBUG

# Sessions end after CIM_SESSION_IDLE_MINUTES without a request (sliding) and CIM_SESSION_MAX_HOURS after login,
# whichever comes first (cim.accounts.middleware.SessionTimeoutMiddleware); the cookie never outlives the maximum.
CIM_SESSION_IDLE_MINUTES = int(os.environ.get("CIM_SESSION_IDLE_MINUTES", "30"))
CIM_SESSION_MAX_HOURS = int(os.environ.get("CIM_SESSION_MAX_HOURS", "12"))
SESSION_COOKIE_AGE = CIM_SESSION_MAX_HOURS * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Served over HTTPS behind a proxy that sets X-Forwarded-Proto (docs/deploy.md): Secure cookies, plain HTTP
# redirected (but the probes of load balancers and Prometheus), and HSTS.
CIM_HTTPS = _env_bool("CIM_HTTPS", _env_bool("CIM_SECURE_COOKIES", False))
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = CIM_HTTPS
if CIM_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^(health|ready|metrics)$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("CIM_HSTS_SECONDS", str(2 * 365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("CIM_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = _env_bool("CIM_HSTS_PRELOAD", True)
# Scripts only from CIM's own static files: no inline scripts or eval anywhere in the pages. Inline styles stay
# allowed (style attributes in templates, Bootstrap and ECharts set them). Public forms may be framed elsewhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Customer data rules
CIM_PHONE_REGION = os.environ.get("CIM_PHONE_REGION", "CN")
# A pair of customers at this match probability or above is shown as a likely duplicate.
CIM_DUPLICATE_THRESHOLD = float(os.environ.get("CIM_DUPLICATE_THRESHOLD", "0.8"))
# Pairs a scan finds at this probability or above are merged without review; unset (the default): never.
CIM_AUTO_MERGE_THRESHOLD = (
    float(os.environ["CIM_AUTO_MERGE_THRESHOLD"]) if os.environ.get("CIM_AUTO_MERGE_THRESHOLD") else None
)
# The engine of the duplicate scan: "duckdb" (in this process) or "spark" (Splink on Spark, at CIM_SPARK_MASTER:
# a cluster's URL such as spark://host:7077, or local[N] for N threads here).
CIM_DEDUPE_ENGINE = os.environ.get("CIM_DEDUPE_ENGINE", "duckdb")
CIM_SPARK_MASTER = os.environ.get("CIM_SPARK_MASTER", "local[2]")
# Customers not reviewed for this many months are due for their periodic review (定期核对).
CIM_REVIEW_MONTHS = int(os.environ.get("CIM_REVIEW_MONTHS", "12"))
# A follow-up reminds its owner this many minutes before it is due, unless a time is chosen.
CIM_FOLLOW_UP_REMIND_BEFORE_MINUTES = int(os.environ.get("CIM_FOLLOW_UP_REMIND_BEFORE_MINUTES", "60"))
# Scheme and host of the links in emails the worker sends (it has no request to take them from).
CIM_SITE_URL = os.environ.get("CIM_SITE_URL", "http://127.0.0.1:8000")
# Lifecycle stages: loyal from this many orders; at risk, then churned, after these many days without one.
CIM_LIFECYCLE_LOYAL_ORDERS = int(os.environ.get("CIM_LIFECYCLE_LOYAL_ORDERS", "5"))
CIM_LIFECYCLE_AT_RISK_DAYS = int(os.environ.get("CIM_LIFECYCLE_AT_RISK_DAYS", "180"))
CIM_LIFECYCLE_CHURNED_DAYS = int(os.environ.get("CIM_LIFECYCLE_CHURNED_DAYS", "365"))
# Feedback topics: a JSON file {"key": {"label": "…", "words": […]}} replacing the built-in taxonomy; empty: built in.
CIM_FEEDBACK_TOPICS_FILE = os.environ.get("CIM_FEEDBACK_TOPICS_FILE", "")
# Churn warning: the window (days) of "recent" and of the backtest; follow-ups for customers at this risk or above
# among the most valuable share; their owner, else this user (a username), else the first administrator.
CIM_CHURN_WINDOW_DAYS = int(os.environ.get("CIM_CHURN_WINDOW_DAYS", "90"))
CIM_CHURN_TASK_RISK = float(os.environ.get("CIM_CHURN_TASK_RISK", "0.7"))
CIM_CHURN_TASK_VALUE_SHARE = float(os.environ.get("CIM_CHURN_TASK_VALUE_SHARE", "0.2"))
CIM_CHURN_TASK_OWNER = os.environ.get("CIM_CHURN_TASK_OWNER", "")
# Frequently-bought-together rules: share of orders a product set must appear in, and how often the "then" follows.
CIM_RULES_MIN_SUPPORT = float(os.environ.get("CIM_RULES_MIN_SUPPORT", "0.01"))
CIM_RULES_MIN_CONFIDENCE = float(os.environ.get("CIM_RULES_MIN_CONFIDENCE", "0.2"))
# Scheduled PDF reports: a .ttf/.ttc font with Chinese characters (default: WenQuanYi or Noto CJK, found at run time).
CIM_PDF_FONT = os.environ.get("CIM_PDF_FONT", "")
# Largest file that may be attached to an interaction.
CIM_ATTACHMENT_MAX_MB = int(os.environ.get("CIM_ATTACHMENT_MAX_MB", "20"))

# Backups (docs/backup.md): where they go, how many of each kind are kept, when the last one is too old.
CIM_BACKUP_DIR = Path(os.environ.get("CIM_BACKUP_DIR", DATA_DIR / "backups")).resolve()
CIM_BACKUP_KEEP_DAILY = int(os.environ.get("CIM_BACKUP_KEEP_DAILY", "7"))
CIM_BACKUP_KEEP_WEEKLY = int(os.environ.get("CIM_BACKUP_KEEP_WEEKLY", "4"))
CIM_BACKUP_KEEP_MONTHLY = int(os.environ.get("CIM_BACKUP_KEEP_MONTHLY", "12"))
CIM_BACKUP_MAX_AGE_HOURS = float(os.environ.get("CIM_BACKUP_MAX_AGE_HOURS", "26"))

# Email (form double opt-in and other messages): SMTP when CIM_EMAIL_HOST is set, else printed to the console.
EMAIL_HOST = os.environ.get("CIM_EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get("CIM_EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = int(os.environ.get("CIM_EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("CIM_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("CIM_EMAIL_PASSWORD", "")
EMAIL_USE_SSL = _env_bool("CIM_EMAIL_USE_SSL", False)  # port 465
EMAIL_USE_TLS = _env_bool("CIM_EMAIL_USE_TLS", not EMAIL_USE_SSL)  # STARTTLS, port 587
EMAIL_TIMEOUT = 10
# SMTP connections a delivery worker drives at once; their messages are committed together (docs/messages.md).
CIM_EMAIL_CONNECTIONS = int(os.environ.get("CIM_EMAIL_CONNECTIONS", "8"))
DEFAULT_FROM_EMAIL = os.environ.get("CIM_EMAIL_FROM", "CIM <noreply@localhost>")
# django-anymail's webhooks (/anymail/<esp>/tracking/ and /inbound/) take `user:password` basic auth: give the ESP
# https://USER:PASSWORD@host/anymail/... with this secret (docs/campaigns.md); generated when not set.
ANYMAIL = {
    "WEBHOOK_SECRET": load_or_create(
        DATA_DIR, "CIM_ANYMAIL_WEBHOOK_SECRET", "anymail_webhook_secret", generate=lambda: f"cim:{token_urlsafe(24)}"
    )
}
# SMS verification codes: a dotted path to a cim.ingest.sms.SmsSender.
CIM_SMS_BACKEND = os.environ.get("CIM_SMS_BACKEND", "cim.ingest.sms.ConsoleSmsSender")
CIM_SMS_FILE = Path(os.environ.get("CIM_SMS_FILE", DATA_DIR / "sms-outbox.jsonl"))
# Messages to customers (docs/messages.md): caps per purpose ("purpose=count/days"), quiet hours in TIME_ZONE,
# the SMS and WeChat providers and their credentials.
CIM_MESSAGE_CAPS = os.environ.get("CIM_MESSAGE_CAPS", "marketing=3/7,events=3/7,research=2/30")
CIM_MESSAGE_QUIET_HOURS = os.environ.get("CIM_MESSAGE_QUIET_HOURS", "21:00-08:00")
CIM_MESSAGE_QUIET_HOURS_EXEMPT = os.environ.get("CIM_MESSAGE_QUIET_HOURS_EXEMPT", "service")
CIM_MESSAGE_LEASE_SECONDS = int(os.environ.get("CIM_MESSAGE_LEASE_SECONDS", "300"))
CIM_MESSAGE_MAX_ATTEMPTS = int(os.environ.get("CIM_MESSAGE_MAX_ATTEMPTS", "5"))
# An inbox whose mails `cim campaigns bounces` reads: its "unsubscribe <token>" mails withdraw consent (the mailto:
# link of List-Unsubscribe, RFC 2369); without it only the one-click HTTPS link is offered.
CIM_MESSAGE_UNSUBSCRIBE_EMAIL = os.environ.get("CIM_MESSAGE_UNSUBSCRIBE_EMAIL", "")
CIM_MESSAGE_OUTBOX_DIR = Path(os.environ.get("CIM_MESSAGE_OUTBOX_DIR", DATA_DIR / "outbox"))
CIM_MESSAGE_SMS_PROVIDER = os.environ.get("CIM_MESSAGE_SMS_PROVIDER", "file")
CIM_MESSAGE_WECHAT_PROVIDER = os.environ.get("CIM_MESSAGE_WECHAT_PROVIDER", "file")
# The ExternalId system whose value is the customer's WeChat id (official-account openid or WeCom userid).
CIM_WECHAT_ID_SYSTEM = os.environ.get("CIM_WECHAT_ID_SYSTEM", "wechat")
CIM_ALIYUN_ACCESS_KEY_ID = os.environ.get("CIM_ALIYUN_ACCESS_KEY_ID", "")
CIM_ALIYUN_ACCESS_KEY_SECRET = os.environ.get("CIM_ALIYUN_ACCESS_KEY_SECRET", "")
CIM_ALIYUN_SMS_SIGN_NAME = os.environ.get("CIM_ALIYUN_SMS_SIGN_NAME", "")
CIM_ALIYUN_SMS_ENDPOINT = os.environ.get("CIM_ALIYUN_SMS_ENDPOINT", "https://dysmsapi.aliyuncs.com")
CIM_TENCENT_SECRET_ID = os.environ.get("CIM_TENCENT_SECRET_ID", "")
CIM_TENCENT_SECRET_KEY = os.environ.get("CIM_TENCENT_SECRET_KEY", "")
CIM_TENCENT_SMS_APP_ID = os.environ.get("CIM_TENCENT_SMS_APP_ID", "")
CIM_TENCENT_SMS_SIGN_NAME = os.environ.get("CIM_TENCENT_SMS_SIGN_NAME", "")
CIM_TENCENT_SMS_REGION = os.environ.get("CIM_TENCENT_SMS_REGION", "ap-guangzhou")
CIM_TENCENT_SMS_ENDPOINT = os.environ.get("CIM_TENCENT_SMS_ENDPOINT", "https://sms.tencentcloudapi.com")
CIM_WECOM_CORP_ID = os.environ.get("CIM_WECOM_CORP_ID", "")
CIM_WECOM_SECRET = os.environ.get("CIM_WECOM_SECRET", "")
CIM_WECOM_AGENT_ID = os.environ.get("CIM_WECOM_AGENT_ID", "")
CIM_WECOM_ENDPOINT = os.environ.get("CIM_WECOM_ENDPOINT", "https://qyapi.weixin.qq.com")
CIM_WECHAT_APP_ID = os.environ.get("CIM_WECHAT_APP_ID", "")
CIM_WECHAT_APP_SECRET = os.environ.get("CIM_WECHAT_APP_SECRET", "")
CIM_WECHAT_ENDPOINT = os.environ.get("CIM_WECHAT_ENDPOINT", "https://api.weixin.qq.com")
# The token of the official account's server configuration (服务器配置 → 令牌): signs the receipts WeChat sends.
CIM_WECHAT_TOKEN = os.environ.get("CIM_WECHAT_TOKEN", "")
# Public form rate limits count in the cache: per process unless CIM_REDIS_URL shares them between processes.
CIM_REDIS_URL = os.environ.get("CIM_REDIS_URL", "")
# Imports of millions of rows run for minutes: RQ would stop a job after 3 by default.
RQ_QUEUES = {"default": {"URL": CIM_REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 6 * 3600}}
CACHES = {
    "default": {
        "BACKEND": "cim.core.cache.ResilientRedisCache",
        "LOCATION": CIM_REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    if CIM_REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
CIM_FORM_RATE_PER_IP = os.environ.get("CIM_FORM_RATE_PER_IP", "20/h")
CIM_FORM_RATE_PER_CONTACT = os.environ.get("CIM_FORM_RATE_PER_CONTACT", "5/h")
# Webhooks (docs/webhooks.md): the sender's concurrency, its share per endpoint, the request timeout, and when an
# endpoint that keeps failing is switched off.
CIM_WEBHOOK_CONCURRENCY = int(os.environ.get("CIM_WEBHOOK_CONCURRENCY", "64"))
CIM_WEBHOOK_PER_ENDPOINT = int(os.environ.get("CIM_WEBHOOK_PER_ENDPOINT", "16"))
CIM_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("CIM_WEBHOOK_TIMEOUT_SECONDS", "10"))
CIM_WEBHOOK_DISABLE_AFTER_FAILURES = int(os.environ.get("CIM_WEBHOOK_DISABLE_AFTER_FAILURES", "50"))
CIM_WEBHOOK_DISABLE_AFTER_HOURS = float(os.environ.get("CIM_WEBHOOK_DISABLE_AFTER_HOURS", "24"))
CIM_WEBHOOK_ROTATION_GRACE_HOURS = float(os.environ.get("CIM_WEBHOOK_ROTATION_GRACE_HOURS", "24"))
# The request header holding the visitor's address behind a proxy (e.g. HTTP_X_REAL_IP); empty: REMOTE_ADDR.
CIM_CLIENT_IP_HEADER = os.environ.get("CIM_CLIENT_IP_HEADER", "")

# JSON lines on stderr (CIM_LOG_FORMAT=console for people reading a terminal); see docs/observability.md.
LOGGING = logging_config(
    level=os.environ.get("CIM_LOG_LEVEL", "WARNING"), json=os.environ.get("CIM_LOG_FORMAT", "json") != "console"
)
# Metrics: the bearer token Prometheus sends; the folder gunicorn's processes share their samples through.
CIM_METRICS_TOKEN = load_or_create(DATA_DIR, "CIM_METRICS_TOKEN", "metrics_token")
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")

# API tokens expire after this many days unless another lifetime (at most CIM_API_TOKEN_MAX_DAYS) is chosen.
CIM_API_TOKEN_DAYS = int(os.environ.get("CIM_API_TOKEN_DAYS", "90"))
CIM_API_TOKEN_MAX_DAYS = int(os.environ.get("CIM_API_TOKEN_MAX_DAYS", "366"))

NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_PER_PAGE_SIZE = 500
