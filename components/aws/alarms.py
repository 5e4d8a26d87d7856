"""HarborAlarms: one SNS topic and the CloudWatch alarms that tell operators before the clusters do.

EC2's own status checks come from AWS/EC2; disk usage, Harbor's health and the probe's failures
are put into the HarborCache namespace by the VM itself (files/harbor-metrics.py, a systemd timer,
signed with the instance role; see docs/operate.md, Alarms: why not the CloudWatch agent).

With replicas > 1: EC2's recover/reboot alarms for every node, the reporter's disk and health
alarms for every node (each node reports with the dimension Node, its index:
operate_files.reporter_environment), and the load balancer's own metrics (AWS/ApplicationELB): a
target failing Harbor's ping, no healthy target at all, 5xx answered by the load balancer, and
its ACM certificate's days left (AWS/CertificateManager).
With externalServices: RDS's and ElastiCache's own metrics (components/aws/store_alarms.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.alarm_specs import AlarmSpec, probe_alarm_specs, watch_alarm_specs
from components.aws.store_alarms import StoreMetrics, store_alarm_specs
from components.aws.tagging import resource_tags
from components.settings.settings import Settings
from components.vm.operate_files import METRICS_NAMESPACE_PREFIX, METRICS_NODE_DIMENSION, metrics_namespace


@dataclass(frozen=True)
class HarborAlarmsArgs:
    settings: Settings
    instance_id: pulumi.Input[str]
    instance_role_name: pulumi.Input[str]
    # The step that starts the reporter on the VM: alarms on its metrics come after it.
    reporting: list[pulumi.Resource]
    # replicas > 1: nodes 1..N-1's instance ids (node 0's is instance_id) and the load balancer.
    other_instance_ids: tuple[pulumi.Input[str], ...] = ()
    load_balancer: LoadBalancerMetrics | None = None
    # The deploy's smoke step, which puts the probe's first results: alarms that treat the probe's
    # silence as failure come after it, so a new stack does not start in ALARM.
    probed: tuple[pulumi.Resource, ...] = ()
    # externalServices: RDS and ElastiCache (components/aws/store_alarms.py).
    stores: StoreMetrics | None = None


@dataclass(frozen=True)
class LoadBalancerMetrics:
    """The CloudWatch dimensions of an ALB and its target group: their ARN suffixes (aws.lb arn_suffix);
    and its ACM certificate's ARN (AWS/CertificateManager's dimension CertificateArn)."""

    load_balancer: pulumi.Input[str]
    target_group: pulumi.Input[str]
    certificate: pulumi.Input[str] | None = None


# ACM starts renewing 60 days before expiry (and mails at 45, 30, 7 and 1 days when it cannot validate).
ACM_CERTIFICATE_DAYS_LEFT = 45


def put_metrics_policy(settings: Settings, alarm_topic_arn: str) -> str:
    """The instance role may put metrics, into its stack's namespace only, list snapshots (the
    reporter's HoursSinceSnapshot; DescribeSnapshots has no resource-level permissions, Service
    Authorization Reference "Actions defined by Amazon EC2": Resource "*", read-only) and list the
    subscriptions of its stack's alarm topic only (ConfirmedAlarmSubscribers; "Actions defined by
    Amazon SNS": ListSubscriptionsByTopic, access level List, resource type topic*)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "cloudwatch:PutMetricData",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"cloudwatch:namespace": metrics_namespace(settings)}},
                },
                {"Effect": "Allow", "Action": "ec2:DescribeSnapshots", "Resource": "*"},
                {"Effect": "Allow", "Action": "sns:ListSubscriptionsByTopic", "Resource": alarm_topic_arn},
            ],
        }
    )


def ec2_action_arn(region: str, action: str) -> str:
    # CloudWatch's EC2 alarm actions (AWS docs "Create alarms to stop, terminate, reboot, or recover an instance").
    return f"arn:aws:automate:{region}:ec2:{action}"


def instance_alarm_specs(instance_id: pulumi.Input[str], prefix: str = "") -> list[AlarmSpec]:
    """EC2's status checks of one instance, with the actions that repair it."""
    return [
        AlarmSpec(
            f"{prefix}system-status",
            "EC2 system status check failed (AWS hardware or network): the instance is recovered onto other hardware",
            "AWS/EC2",
            "StatusCheckFailed_System",
            {"InstanceId": instance_id},
            "Maximum",
            "GreaterThanOrEqualToThreshold",
            1,
            60,
            2,
            "missing",
            ec2_action="recover",
        ),
        AlarmSpec(
            f"{prefix}instance-status",
            "EC2 instance status check failed (the OS does not answer): the instance is rebooted",
            "AWS/EC2",
            "StatusCheckFailed_Instance",
            {"InstanceId": instance_id},
            "Maximum",
            "GreaterThanOrEqualToThreshold",
            1,
            60,
            3,
            "missing",
            ec2_action="reboot",
        ),
    ]


def load_balancer_alarm_specs(settings: Settings, metrics: LoadBalancerMetrics) -> list[AlarmSpec]:
    """The ALB's view (AWS/ApplicationELB, ELB User Guide "CloudWatch metrics for your Application Load Balancer")."""
    both = {"LoadBalancer": metrics.load_balancer, "TargetGroup": metrics.target_group}
    return [
        AlarmSpec(
            "unhealthy-node",
            "A Harbor node fails the load balancer's health check (Harbor's ping, or 503 while the node's own storage write "
            "or pull check fails): see that node's journalctl -u harbor-node-check and -u harbor",
            "AWS/ApplicationELB",
            "UnHealthyHostCount",
            both,
            "Maximum",
            "GreaterThanThreshold",
            0,
            60,
            3,
            "notBreaching",
        ),
        AlarmSpec(
            "no-healthy-node",
            "No Harbor node passes the load balancer's health check: the cache is down",
            "AWS/ApplicationELB",
            "HealthyHostCount",
            both,
            "Minimum",
            "LessThanThreshold",
            1,
            60,
            2,
            "breaching",
        ),
        AlarmSpec(
            "load-balancer-5xx",
            "The load balancer itself answered 5xx (no healthy node, or a node closed the connection)",
            "AWS/ApplicationELB",
            "HTTPCode_ELB_5XX_Count",
            {"LoadBalancer": metrics.load_balancer},
            "Sum",
            "GreaterThanThreshold",
            10,
            300,
            1,
            "notBreaching",
        ),
        *([acm_certificate_alarm_spec(settings, metrics.certificate)] if metrics.certificate is not None else []),
    ]


def acm_certificate_alarm_spec(settings: Settings, certificate_arn: pulumi.Input[str]) -> AlarmSpec:
    """The load balancer's certificate (HA): ACM renews a DNS-validated certificate itself, starting 60
    days before it expires, only while its validation CNAME still resolves (ACM User Guide, "Renewal for
    domains validated by DNS"; a removed or changed CNAME is the most common failure). ACM puts the
    days left into CloudWatch as AWS/CertificateManager DaysToExpiry with the dimension CertificateArn
    (ACM User Guide, "Supported CloudWatch metrics"; aws-cdk-lib CertificateBase.metricDaysToExpiry:
    that namespace, name and dimension, Minimum over a day), a few times a day. Fewer than
    ACM_CERTIFICATE_DAYS_LEFT days left means renewal has failed for two weeks, with six weeks to fix it.
    ACM stops the metric once the certificate has expired: missing data keeps the alarm's state, which
    by then is ALARM, so silence never clears it."""
    return AlarmSpec(
        "certificate-expiry",
        f"The load balancer's ACM certificate for {settings.hostname} expires in less than {ACM_CERTIFICATE_DAYS_LEFT} "
        "days: ACM's renewal is failing; aws acm describe-certificate (RenewalSummary) says why, most often the "
        "validation CNAME in the hosted zone is gone (pulumi up puts it back)",
        "AWS/CertificateManager",
        "DaysToExpiry",
        {"CertificateArn": certificate_arn},
        "Minimum",
        "LessThanThreshold",
        ACM_CERTIFICATE_DAYS_LEFT,
        86400,
        1,
        "missing",
    )


def reporter_alarm_specs(settings: Settings, prefix: str = "", node: int | None = None) -> list[AlarmSpec]:
    """Disk and health of one host, from files/harbor-metrics.py. `node`: in HA mode, the node
    whose series (dimension Node) the alarms watch; None on the single VM, whose series is the stack's."""
    reporter = {"Stack": settings.stack_id, **({METRICS_NODE_DIMENSION: str(node)} if node is not None else {})}
    where = f" on node {node}" if node is not None else ""
    percent = settings.alarm_disk_used_percent
    minutes = settings.alarm_harbor_unhealthy_minutes
    return [
        AlarmSpec(
            f"{prefix}data-disk",
            f"Data volume {settings.data_mount}{where} more than {percent}% full: grow dataVolumeSizeGb or tighten GC/retention",
            metrics_namespace(settings),
            "DiskUsedPercent",
            {**reporter, "Mount": settings.data_mount},
            "Maximum",
            "GreaterThanThreshold",
            percent,
            300,
            1,
            "missing",
        ),
        AlarmSpec(
            f"{prefix}root-disk",
            f"Root volume{where} more than {percent}% full (Docker images, logs): grow rootVolumeSizeGb or prune",
            metrics_namespace(settings),
            "DiskUsedPercent",
            {**reporter, "Mount": "/"},
            "Maximum",
            "GreaterThanThreshold",
            percent,
            300,
            1,
            "missing",
        ),
        *(
            AlarmSpec(
                f"{prefix}{mount_key}-inodes",
                f"{label}{where} has used more than {percent}% of its inodes (many small files): writes fail with space left",
                metrics_namespace(settings),
                "InodesUsedPercent",
                {**reporter, "Mount": mount},
                "Maximum",
                "GreaterThanThreshold",
                percent,
                300,
                1,
                # Silence is the harbor-unhealthy alarm's: it must not clear this one.
                "missing",
            )
            for mount_key, mount, label in (
                ("data", settings.data_mount, f"Data volume {settings.data_mount}"),
                ("root", "/", "Root volume"),
            )
        ),
        AlarmSpec(
            f"{prefix}write-back-failed",
            f"Harbor{where} served pulls from the upstream without keeping them (core logged a failed write-back into "
            "its registry): the cache does not cache; see journalctl -u harbor and /var/log/harbor/core.log, check storage",
            metrics_namespace(settings),
            "WriteBackFailures",
            reporter,
            "Sum",
            "GreaterThanThreshold",
            0,
            300,
            1,
            "missing",
        ),
        AlarmSpec(
            f"{prefix}harbor-5xx",
            f"Harbor{where} answered more than 10 requests with 5xx in 5 minutes (nginx's access log): "
            "see /var/log/harbor/core.log",
            metrics_namespace(settings),
            "Harbor5xx",
            reporter,
            "Sum",
            "GreaterThanThreshold",
            10,
            300,
            1,
            "missing",
        ),
        AlarmSpec(
            f"{prefix}harbor-unhealthy",
            f"Harbor{where} not healthy (or not reporting) for {minutes} minutes: see journalctl -u harbor and docker compose ps",
            metrics_namespace(settings),
            "HarborHealthy",
            reporter,
            "Maximum",
            "LessThanThreshold",
            1,
            60,
            minutes,
            # No report at all means the VM or its reporter is down: that is unhealthy too.
            "breaching",
        ),
    ]


def alarm_specs(
    settings: Settings,
    instance_id: pulumi.Input[str],
    other_instance_ids: tuple[pulumi.Input[str], ...] = (),
    load_balancer: LoadBalancerMetrics | None = None,
    stores: StoreMetrics | None = None,
) -> list[AlarmSpec]:
    """Node 0's (the single VM's) alarms keep their names; node i's are prefixed `node<i>-`. In HA
    mode every node has its own disk and health alarms on its own series (dimension Node)."""
    others = list(enumerate(other_instance_ids, start=1))
    nodes = [spec for index, other in others for spec in instance_alarm_specs(other, f"node{index}-")]
    if settings.high_availability:
        reporters = [
            *reporter_alarm_specs(settings, node=0),
            *(spec for index, _ in others for spec in reporter_alarm_specs(settings, f"node{index}-", node=index)),
        ]
    else:
        reporters = reporter_alarm_specs(settings)
    return [
        *instance_alarm_specs(instance_id),
        *nodes,
        *reporters,
        *probe_alarm_specs(settings),
        *watch_alarm_specs(settings),
        *(load_balancer_alarm_specs(settings, load_balancer) if load_balancer is not None else []),
        *(store_alarm_specs(stores) if stores is not None else []),
    ]


class HarborAlarms(pulumi.ComponentResource):
    def __init__(self, name: str, args: HarborAlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborAlarms", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        # Not KMS-encrypted: CloudWatch cannot publish to a topic under the AWS-managed SNS key,
        # and nothing secret travels in an alarm.
        self.topic = aws.sns.Topic(f"{name}-topic", tags=resource_tags(settings, f"{name}-topic"), opts=child)
        if settings.alarm_email:
            email = aws.sns.TopicSubscription(
                f"{name}-email", topic=self.topic.arn, protocol="email", endpoint=settings.alarm_email, opts=child
            )
            # An unconfirmed e-mail subscription delivers nothing, and its link expires after 3 days.
            email.pending_confirmation.apply(
                lambda pending: (
                    pulumi.log.warn(
                        f"harbor-cache {settings.stack_id}: the alarm e-mail to {settings.alarm_email} is not confirmed "
                        "yet: nobody is told when the cache breaks until the link in AWS's mail is followed "
                        "(it expires after 3 days)",
                        resource=self,
                    )
                    if pending
                    else None
                )
            )
        else:
            pulumi.log.warn(
                f"harbor-cache {settings.stack_id}: the alarm topic has no subscriber: nobody is told when the cache breaks. "
                "Set alarmEmail, or subscribe anything to the output alarmTopicArn (aws sns subscribe)",
                resource=self,
            )
        self.put_metrics = aws.iam.RolePolicy(
            f"{name}-put-metrics",
            role=args.instance_role_name,
            policy=self.topic.arn.apply(lambda arn: put_metrics_policy(settings, arn)),
            opts=child,
        )

        after_reporter = pulumi.ResourceOptions(parent=self, depends_on=[*args.reporting, self.put_metrics])
        after_deploy_opts = pulumi.ResourceOptions(parent=self, depends_on=[*args.reporting, self.put_metrics, *args.probed])
        # The probe's results and what needs the monitor robot exist only once the deploy wrote them.
        after_deploy = {spec.key for spec in [*probe_alarm_specs(settings), *watch_alarm_specs(settings)]}
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for spec in alarm_specs(settings, args.instance_id, args.other_instance_ids, args.load_balancer, args.stores):
            actions: list[pulumi.Input[str]] = [self.topic.arn]
            if spec.ec2_action:
                actions.insert(0, ec2_action_arn(settings.region, spec.ec2_action))
            self.alarms[spec.key] = aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.key}",
                alarm_description=f"harbor-cache {settings.stack_id}: {spec.description}",
                namespace=spec.namespace,
                metric_name=spec.metric,
                dimensions=spec.dimensions,
                statistic=spec.statistic,
                comparison_operator=spec.comparison,
                threshold=spec.threshold,
                period=spec.period,
                evaluation_periods=spec.evaluation_periods,
                datapoints_to_alarm=spec.evaluation_periods,
                treat_missing_data=spec.treat_missing_data,
                alarm_actions=actions,
                ok_actions=[self.topic.arn],
                tags=resource_tags(settings, f"{name}-{spec.key}"),
                opts=_pick(spec, after_deploy, child, after_reporter, after_deploy_opts),
            )

        self.topic_arn = self.topic.arn
        self.register_outputs({"alarmTopicArn": self.topic.arn})


def _pick(spec: AlarmSpec, after_deploy: set[str], *options: pulumi.ResourceOptions) -> pulumi.ResourceOptions:
    """EC2's and the load balancer's alarms need nothing on the VM; the reporter's come after it;
    the probe's and the monitor robot's after the deploy wrote them."""
    child, after_reporter, after_deploy_opts = options
    if not spec.namespace.startswith(METRICS_NAMESPACE_PREFIX):
        return child
    return after_deploy_opts if spec.key in after_deploy else after_reporter
