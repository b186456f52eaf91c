import hashlib
from datetime import timedelta

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

# DRF's rest_framework.authtoken table: one clear-text key per user, no expiry. It is no longer
# installed; an existing database still has it.
LEGACY_TABLE = "authtoken_token"


def move_legacy_tokens(apps, schema_editor):
    """Each old key becomes a hashed write token (so scripts keep working until it expires),
    then the table of clear-text keys is dropped. A fresh database has no such table."""
    connection = schema_editor.connection
    if LEGACY_TABLE not in connection.introspection.table_names():
        return
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {qn('key')}, {qn('user_id')} FROM {qn(LEGACY_TABLE)}")
        rows = cursor.fetchall()
    ApiToken = apps.get_model("projects", "ApiToken")
    expires = timezone.now() + timedelta(days=settings.API_TOKEN_DAYS)
    ApiToken.objects.bulk_create(
        ApiToken(
            user_id=user_id,
            name="Token from before hashed tokens",
            prefix=key[:8],
            key_hash=hashlib.sha256(key.encode()).hexdigest(),
            scope="write",
            expires_at=expires,
        )
        for key, user_id in rows
    )
    schema_editor.execute(f"DROP TABLE {qn(LEGACY_TABLE)}")


class Migration(migrations.Migration):

    dependencies = [
        ('projects', '0004_membership'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ApiToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text="What the token is for, e.g. 'CI'.", max_length=100)),
                ('prefix', models.CharField(help_text="The token's visible start.", max_length=16)),
                ('key_hash', models.CharField(max_length=64, unique=True)),
                ('scope', models.CharField(choices=[('read', 'read (GET only)'), ('write', 'read and write')], default='read', max_length=5)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('expires_at', models.DateTimeField()),
                ('last_used_at', models.DateTimeField(blank=True, null=True)),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created_at', '-id'],
                'constraints': [models.CheckConstraint(condition=models.Q(('scope__in', ['read', 'write'])), name='api_token_scope_known')],
            },
        ),
        migrations.RunPython(move_legacy_tokens, migrations.RunPython.noop),
    ]
