from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0003_board_order_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="task",
            name="labels",
            field=models.CharField(blank=True, default="", max_length=400),
        ),
    ]
