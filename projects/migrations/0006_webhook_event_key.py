from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('projects', '0005_api_tokens'),
    ]

    operations = [
        migrations.AddField(
            model_name='webhookdelivery',
            name='event_key',
            field=models.CharField(blank=True, max_length=200, null=True),
        ),
        migrations.AddConstraint(
            model_name='webhookdelivery',
            constraint=models.UniqueConstraint(fields=('project', 'event_key'), name='webhook_event_once'),
        ),
    ]
